"""Memory of the simulated estate: bytes per meter at 10k, 100k and 1M meters (issue 4).

Each size runs in a fresh child process, so resident set sizes do not mix:

- ``create``: the time to commission N sandbox meters into a ``Fleet``
  (first meter through ``commission_sandbox_meter``; the rest through the
  same interned cells and seq-number tuples it returns, as
  ``commission_meter`` does for every meter with the same cells);
- ``RSS/meter``: growth of the process's resident set over the creation,
  divided by N (what the operating system sees, allocator slack included);
- ``traced/meter``: tracemalloc's count of live bytes allocated for the
  fleet, divided by N, in a second child (tracemalloc slows creation);
- ``+migrated``: extra traced bytes per meter after a sample of meters
  accepted a real 0x0106 (signed, MACed, path-checked) and hold their new
  seq numbers and the ECoS certificate.

"Flat" means the per-meter figures do not grow with N: no per-meter
certificate copies and no per-meter keys (keys are derived from the
profile's seed when a message is handled).

Command: ``.venv/bin/python bench/estate_memory.py [--sizes 10000,100000,1000000]``
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _child(n: int, traced: bool, migrate: int) -> dict[str, float]:
    from openecos.device import commission_sandbox_meter, sandbox_profile
    from openecos.device.state import MeterState
    from openecos.eui import Eui64
    from openecos.gbcs.codes import KeyUsage
    from openecos.migration import EcosCredential, build_migration_command
    from openecos.network import Fleet
    from openecos.smki import sandbox_pki
    from openecos.smki.sandbox import TCOS_PARTY

    pki = sandbox_pki()
    profile = sandbox_profile(pki)
    base = 0x00DB_0000_0000_0000
    first = commission_sandbox_meter(pki, Eui64.from_int(base), profile)
    gc.collect()
    if traced:
        tracemalloc.start()
    rss0 = _rss_bytes()
    traced0 = tracemalloc.get_traced_memory()[0] if traced else 0
    start = time.perf_counter()
    fleet = Fleet(profile)
    cells, seqs = first.cells, first.seq_numbers
    for i in range(n):
        fleet.add(MeterState(Eui64.from_int(base + i), cells, seqs))
    elapsed = time.perf_counter() - start
    gc.collect()
    result = {"n": n, "create_s": elapsed, "rss_per_meter": (_rss_bytes() - rss0) / n}
    if not traced:
        return result
    traced1 = tracemalloc.get_traced_memory()[0]
    result["traced_per_meter"] = (traced1 - traced0) / n
    if migrate:
        tcos_key = pki.entry("tcos-ds").private_key()
        acb_key = pki.entry("acb-ka").private_key()
        from openecos.device import DeviceKey

        signer, acb = DeviceKey(tcos_key), DeviceKey(acb_key)
        credential = EcosCredential.from_der(
            pki.entry("ecos-ds").certificate.der, tuple(c.der for c in pki.organisation_path)
        )
        now = datetime(2026, 1, 1, tzinfo=UTC)
        commands = []
        for i in range(migrate):
            device = Eui64.from_int(base + i)
            commands.append(
                build_migration_command(
                    credential,
                    tcos=TCOS_PARTY,
                    device=device,
                    originator_counter=1_000_000 + i,
                    ecos_counter_floor=500_000 + i,
                    signer=signer,
                    acb_key_agreement=acb,
                    device_key_agreement_key=profile.keys.public_key(  # type: ignore[attr-defined]
                        device, KeyUsage.KEY_AGREEMENT
                    ),
                )
            )
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        accepted = 0
        for i, command in enumerate(commands):
            transition = fleet.handle(Eui64.from_int(base + i), command, now)
            accepted += transition.rejection is None and bool(transition.outputs)
            del transition
        gc.collect()
        # ``commands`` is still alive here, so only what the meters now hold is counted.
        result["migrated_sample"] = accepted
        result["extra_per_migrated"] = (tracemalloc.get_traced_memory()[0] - before) / migrate
        del commands
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--migrate", type=int, default=2000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, traced, migrate = (int(x) for x in args.child.split(","))
        print(json.dumps(_child(n, bool(traced), migrate)))
        return

    def run(n: int, traced: bool) -> dict[str, float]:
        spec = f"{n},{int(traced)},{args.migrate if traced else 0}"
        out = subprocess.run(
            [sys.executable, __file__, "--child", spec], check=True, capture_output=True, text=True
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    print("Simulated estate memory (each size in a fresh process)")
    header = (
        f"{'meters':>10} {'create':>9} {'µs/meter':>9} {'RSS B/meter':>12} "
        f"{'traced B/meter':>15} {'+B/migrated':>12} {'accepted':>9}"
    )
    print(header)
    for n in (int(s) for s in args.sizes.split(",")):
        plain = run(n, traced=False)
        traced = run(n, traced=True)
        print(
            f"{n:>10,} {plain['create_s']:>8.2f}s {plain['create_s'] / n * 1e6:>9.2f} "
            f"{plain['rss_per_meter']:>12.0f} {traced['traced_per_meter']:>15.0f} "
            f"{traced.get('extra_per_migrated', 0.0):>12.0f} "
            f"{traced.get('migrated_sample', 0):>5.0f}/{args.migrate}"
        )


if __name__ == "__main__":
    main()
