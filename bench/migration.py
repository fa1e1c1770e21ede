"""Migration throughput: the product's migration engine with full cryptography (issue 4).

Subject. N eligible meters (loaded with :mod:`openecos.store.bulk`, device
certificates and transitionalCoS cells in the inventory) on PostgreSQL are
migrated by two processes, one per core:

- the *service*: the product's :class:`~openecos.service.migration_engine.MigrationEngine`
  stepping as ``openecos migrate run`` does (``step()`` until every meter
  is done), with its claims and leases, capacity check, eligibility re-check,
  durable TCoS counter block, 0x0106 built, signed by TCoS and MACed by the
  ACB, commands and ``IN_FLIGHT`` recorded before the bytes leave, commands
  marked Sent, and the meters' answers classified (the meter's signature
  verified with the key of its DS certificate from the inventory) and
  applied (lifecycle, command, inventory flip to ECoS, audit, EMRR counters)
  in one durable transaction per batch. Commands reach the meters through the
  engine's batch ``Deliver`` seam (:class:`PipeDelivery`, fire and forget as
  the WAN);
- the *meters*: a :class:`~openecos.network.Fleet` of N simulated meters
  (:mod:`openecos.device`). Each checks the MAC (ECDH with its KA key), the
  TCoS signature, the seq number, and the ECoS certificate's path to its root
  anchor with its own two ECDSA verifications (the fleet-wide path-verdict
  cache is off: a real meter remembers nothing of its neighbours' checks),
  and signs its response with its DS key. Each meter holds its own two keys
  (derived once at start-up, as a real meter holds its keys). The answers of
  a batch are recorded in ``sim_meter_outputs`` in one transaction not waiting
  for the flush, as the simulated estate records them, and the engine takes
  them from there.

The run checks the end: every meter migrated (or an exception with a
reason), no signing counter used twice, the EMRR counters equal a recount.

Floor, measured in the same run on one core (before and after the subject):
per meter, with ``cryptography`` directly: TCoS ECDSA sign + ACB ECDH and
GMAC + meter ECDH and GMAC + meter ECDSA verify of the command + two ECDSA
verifications of the certificate path (ECoS certificate by the organisation
CA, the CA by the root) + meter ECDSA sign of the response + service ECDSA
verify of the response. The floor on two cores is twice the one-core rate
(all of it divides perfectly between the two sides).

Where the time goes: per-stage wall-clock timers in each process, the CPU of
each process and of its PostgreSQL backends (/proc), and with ``--profile
DIR`` cProfile in both processes.

Command::

    .venv/bin/python bench/migration.py --meters 20000
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import multiprocessing
import os
import pstats
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy.engine import make_url

from openecos.device import (
    TRANSITIONAL_COS_CELL,
    AnchorCertificate,
    CertificateCache,
    DeviceKey,
    MeterProfile,
    commission_sandbox_meter,
    handle,
    sandbox_device_certificates,
)
from openecos.device.keys import DerivedDeviceKeys
from openecos.device.state import MeterState
from openecos.duis import issuer_of
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.keys import open_keystore
from openecos.migration import (
    ApprovedModel,
    ApprovedModels,
    CapacityLimits,
    EcosCredential,
    MigrationCommandTemplate,
    MigrationStatus,
    RunEvent,
    build_migration_command,
)
from openecos.network import Fleet
from openecos.service.clock import SystemClock
from openecos.service.identities import DccKeyNames, ServiceTrust, resolve_service_keys
from openecos.service.migration_desk import MigrationDesk
from openecos.service.migration_engine import EngineConfig, MigrationEngine
from openecos.service.migration_identities import resolve_migration_identities
from openecos.smki import TestPki, sandbox_pki
from openecos.smki.sandbox import TCOS_PARTY
from openecos.smki.testpki_files import load_test_pki, write_test_pki
from openecos.store import KnownCertificate, Store, emrr
from openecos.store.bulk import EstateSpec, add_participants, load_estate
from openecos.store.migration import migration_repository
from openecos.store.records import normalise_issuer_name

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SEED = b"openecos bench meters"
FIRST = 0x00DB_0000_0000_0000
_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the floor ----------------------------------------------------------------------------


@dataclass
class Floor:
    """One meter's cryptography with ``cryptography`` directly (module docstring)."""

    pki: TestPki
    command: bytes
    response: bytes

    def __post_init__(self) -> None:
        keys = DerivedDeviceKeys(SEED)
        device = Eui64.from_int(FIRST)
        self.tcos = self.pki.entry("tcos-ds").private_key()
        self.tcos_pub = self.tcos.public_key()
        self.acb = self.pki.entry("acb-ka").private_key()
        self.acb_pub = self.acb.public_key()
        self.meter_ka = keys.key(device, KeyUsage.KEY_AGREEMENT)._key
        self.meter_ka_pub = self.meter_ka.public_key()
        self.meter_ds = keys.key(device, KeyUsage.DIGITAL_SIGNATURE)._key
        self.meter_ds_pub = self.meter_ds.public_key()
        leaf = x509.load_der_x509_certificate(self.pki.entry("ecos-ds").certificate.der)
        ca = x509.load_der_x509_certificate(self.pki.organisation_path[0].der)
        root = x509.load_der_x509_certificate(self.pki.root.certificate.der)
        self.links = [
            (ca.public_key(), leaf.signature, leaf.tbs_certificate_bytes),
            (root.public_key(), ca.signature, ca.tbs_certificate_bytes),
        ]
        self.command_digest = hashlib.sha256(self.command[:-64]).digest()
        self.command_sig = self.tcos.sign(self.command_digest, _PREHASHED)
        self.response_digest = hashlib.sha256(self.response[:-64]).digest()
        self.response_sig = self.meter_ds.sign(self.response_digest, _PREHASHED)

    def _gmac(self, secret: bytes) -> bytes:
        key = hashlib.sha256(b"\x00\x00\x00\x01" + secret + b"other info").digest()[:16]
        encryptor = Cipher(algorithms.AES(key), modes.GCM(b"\x90" * 12)).encryptor()
        encryptor.authenticate_additional_data(self.command)
        encryptor.finalize()
        return encryptor.tag[:12]

    def one_meter(self) -> None:
        ecdsa = ec.ECDSA(hashes.SHA256())
        # Service: TCoS signature and ACB MAC.
        self.tcos.sign(self.command_digest, _PREHASHED)
        self._gmac(self.acb.exchange(ec.ECDH(), self.meter_ka_pub))
        # Meter: MAC, signature, certificate path; its response signature.
        self._gmac(self.meter_ka.exchange(ec.ECDH(), self.acb_pub))
        self.tcos_pub.verify(self.command_sig, self.command_digest, _PREHASHED)
        for public_key, signature, tbs in self.links:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(signature, tbs, ecdsa)
        self.meter_ds.sign(self.response_digest, _PREHASHED)
        # Service: the response's signature.
        self.meter_ds_pub.verify(self.response_sig, self.response_digest, _PREHASHED)


def floor_rate(floor: Floor, n: int = 300, repeats: int = 7) -> tuple[float, float]:
    """Best-of meters per second on one core, by the clock and by CPU time."""
    for _ in range(20):
        floor.one_meter()
    best = best_cpu = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                floor.one_meter()
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - cpu)
    finally:
        gc.enable()
    return n / best, n / best_cpu


# --- the meters' process -----------------------------------------------------------------


class _NoVerdicts(CertificateCache):
    """Interns certificates as usual, but remembers no path verdict: every meter checks."""

    __slots__ = ()

    def verdict(self, key: Hashable) -> object | None:
        return None


def meter_profile(pki: TestPki, *, shared_verdicts: bool, meters: int = 256) -> MeterProfile:
    """The fleet's profile; each meter's two keys are held (``cache_size``) as a meter holds
    its own, instead of being derived again for every message (a simulator artefact)."""
    cache = CertificateCache() if shared_verdicts else _NoVerdicts()
    keys = DerivedDeviceKeys(SEED, cache_size=2 * meters)
    return MeterProfile(keys=keys, policies=pki.policies, certificates=cache)


def meters_main(
    pipe: Pipe, url: str, pki_dir: str, n: int, shared_verdicts: bool, profile_to: str | None
) -> None:
    """The simulated meters: handle each batch of commands, record their answers durably."""
    pki = load_test_pki(Path(pki_dir))
    profile = meter_profile(pki, shared_verdicts=shared_verdicts, meters=n)
    first = commission_sandbox_meter(pki, Eui64.from_int(FIRST), profile)
    fleet = Fleet(profile)
    for i in range(n):
        device = Eui64.from_int(FIRST + i)
        fleet.add(MeterState(device, first.cells, first.seq_numbers))
        profile.keys.signer(device)  # type: ignore[attr-defined]  # the meter's own keys
        profile.keys.key_agreement(device)  # type: ignore[attr-defined]
    store = Store.open(url, run_migrations=False)
    store.estate.add_outputs([], at=datetime.now(UTC))
    profiler = cProfile.Profile() if profile_to else None
    pipe.send("ready")
    clocks = Clocks()
    rejected = handled = 0
    cpu0 = time.process_time()
    while True:
        batch = pipe.recv()
        if batch is None:
            break
        if profiler is not None:
            profiler.enable()
        t = _now()
        now = datetime.now(UTC)
        outputs: list[tuple[Eui64, str, Eui64, int, bytes]] = []
        for device_bytes, command in batch:
            device = Eui64(device_bytes)
            transition = fleet.handle(device, command, now)
            handled += 1
            if transition.rejection is not None:
                rejected += 1
            for out in transition.outputs:
                outputs.append(
                    (device, out.kind.value, out.recipient, out.originator_counter, out.message)
                )
        t = clocks.add("meters: handle (decode, MAC, verify, path, sign)", t)
        # The estate's outputs are durable with the meter's answer, not flushed (estate.py).
        with store.transaction(durable=False) as tx:
            tx.estate.add_outputs(outputs, at=now)
        clocks.add("meters: record answers (1 txn, not flushed)", t)
        if profiler is not None:
            profiler.disable()
    cpu = time.process_time() - cpu0
    backends = _backend_cpu(store)
    store.close()
    if profiler is not None and profile_to:
        profiler.dump_stats(profile_to)
    pipe.send(
        {
            "clocks": clocks.parts,
            "rejected": rejected,
            "handled": handled,
            "cpu": cpu,
            "backends": backends,
        }
    )


# --- setup -----------------------------------------------------------------------------------


def _mint(job: tuple[str, range]) -> list[tuple[str, int, str, bytes]]:
    pki_dir, devices = job
    pki = load_test_pki(Path(pki_dir))
    keys = DerivedDeviceKeys(SEED)
    rows = []
    for i in devices:
        device = Eui64.from_int(FIRST + i)
        certs = sandbox_device_certificates(pki, device, keys)
        for usage, cert in (
            (KeyUsage.DIGITAL_SIGNATURE, certs.digital_signature),
            (KeyUsage.KEY_AGREEMENT, certs.key_agreement),
        ):
            rows.append((device.hex, cert.serial, usage.value, cert.der))
    return rows


def _models() -> ApprovedModels:
    """Every make the bulk estate generates (store/bulk.py: MFR0-4, M0-6)."""
    return ApprovedModels(
        tuple(ApprovedModel(f"MFR{m}", f"M{k}") for m in range(5) for k in range(7))
    )


def setup(url: str, pki_dir: str, n: int, *, in_flight: int, processes: int = 2) -> Store:
    """N eligible meters with device certificates and transitionalCoS cells; the run started."""
    spec = EstateSpec(
        meters=n,
        suppliers=5,
        first_device=FIRST,
        mix=((MigrationStatus.ELIGIBLE, 1),),
        as_of=datetime.now(UTC) - timedelta(hours=2),  # every row due now
    )
    store = Store.open(url)
    with store.engine.begin() as conn:
        emrr.install(conn)
    with store.transaction() as repos:
        add_participants(repos, spec)
        pki = load_test_pki(Path(pki_dir))
        for entry in pki.entries:
            certificate = entry.certificate
            if certificate.key_usage is not None:
                repos.certificates.add(
                    KnownCertificate(
                        der=certificate.der,
                        issuer_name=issuer_of(certificate.der),
                        serial=certificate.serial,
                        subject_eui=certificate.eui,
                        role=certificate.role,
                        key_usage=certificate.key_usage,
                    )
                )
    with store.engine.begin() as conn:
        load_estate(conn, spec)
    issuer = str(pki.device_ca.certificate.subject)
    issuer_key = normalise_issuer_name(issuer)
    step = max(1, n // (processes * 8))
    chunks = [(pki_dir, range(i, min(n, i + step))) for i in range(0, n, step)]
    if processes <= 1:  # in this process (the tests load this file as a module by path)
        minted = [row for chunk in chunks for row in _mint(chunk)]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            minted = [row for rows in pool.map(_mint, chunks) for row in rows]
    tcos = pki.entry("tcos-ds").certificate
    tcos_anchor = AnchorCertificate.of(tcos)
    with store.engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        columns = "fingerprint, issuer_key, issuer_name, serial, subject_eui, key_usage, der"
        with cursor.copy(f"COPY certificates ({columns}) FROM STDIN") as copy:
            for device_hex, serial, usage, der in minted:
                fingerprint = hashlib.sha256(der).digest()
                copy.write_row(
                    (fingerprint, issuer_key, issuer, str(serial), device_hex, usage, der)
                )
        # The inventory's transitionalCoS cell (TCoS), which a confirmed migration rewrites.
        columns = "device, role, key_usage, cell_usage, certificate_der, subject_eui, ski"
        with cursor.copy(f"COPY device_trust_anchors ({columns}) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row(
                    (
                        Eui64.from_int(FIRST + i).hex,
                        int(RemotePartyRole.TRANSITIONAL_COS),
                        KeyUsage.DIGITAL_SIGNATURE.value,
                        TRANSITIONAL_COS_CELL.cell_usage.value,
                        tcos.der,
                        tcos_anchor.subject_unique_id.hex,
                        tcos_anchor.subject_key_id,
                    )
                )
        conn.exec_driver_sql("ANALYZE certificates")
        conn.exec_driver_sql("ANALYZE device_trust_anchors")
    desk = MigrationDesk(store, SystemClock())
    desk.update_settings(
        lambda s: replace(
            s,
            capacity=CapacityLimits(per_day=10 * n, per_hour=10 * n, in_flight=in_flight),
            approved=_models(),
        ),
        actor="bench",
        what="bench setup",
    )
    desk.control(RunEvent.START, actor="bench")
    return store


# --- the service process ---------------------------------------------------------------------


def _now() -> tuple[float, float]:
    """The clock and this thread's CPU time."""
    return time.perf_counter(), time.thread_time()


@dataclass
class Clocks:
    """Seconds spent in each named part: by the clock, and of this thread's CPU."""

    parts: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(self, name: str, since: tuple[float, float]) -> tuple[float, float]:
        now = _now()
        wall, cpu = self.parts.get(name, (0.0, 0.0))
        self.parts[name] = (wall + now[0] - since[0], cpu + now[1] - since[1])
        return now


def _timed(clocks: Clocks, owner: Any, attribute: str, name: str) -> None:
    """Wraps ``owner.attribute`` so the time spent in it is added to ``clocks[name]``."""
    inner = getattr(owner, attribute)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = _now()
        try:
            return inner(*args, **kwargs)
        finally:
            clocks.add(name, t)

    setattr(owner, attribute, wrapper)


class PipeDelivery:
    """The engine's batch ``Deliver`` to the meters' process (fire and forget, as the WAN).

    A thread writes to the pipe, so the engine goes on while the meters are still
    reading an earlier batch (a pipe holds 64 KiB; a batch is hundreds of KiB).
    """

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.outbox: queue.SimpleQueue[list[tuple[bytes, bytes]] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while (batch := self.outbox.get()) is not None:
            self.pipe.send(batch)

    def __call__(self, device: Eui64, party: Eui64, counter: int, message: bytes) -> bool:
        return self.deliver_many([(device, party, counter, message)])[0]

    def deliver_many(self, commands: Sequence[tuple[Eui64, Eui64, int, bytes]]) -> list[bool]:
        self.outbox.put([(device.value, message) for device, _, _, message in commands])
        return [True] * len(commands)

    def close(self) -> None:
        self.outbox.put(None)
        self.thread.join()


def _instrument(engine: MigrationEngine, clocks: Clocks) -> None:
    """Per-stage timers around the engine's steps (the bench's view; nothing changes)."""
    from openecos.service import migration_answers, migration_engine, migration_recovery
    from openecos.store import migration as store_migration

    mr = store_migration.MigrationRepository
    _timed(clocks, engine.answers, "process", "answers (1 txn)")
    _timed(clocks, migration_answers, "classify_response", "answers: classify (verify, decode)")
    _timed(clocks, mr, "next_outputs", "answers: read outputs")
    _timed(clocks, mr, "commands_by_key", "answers: read commands")
    _timed(clocks, mr, "lock_many", "answers: lock rows")
    _timed(clocks, mr, "apply_effects", "answers: write effects")
    _timed(clocks, engine, "start_due", "starts")
    _timed(clocks, mr, "claim", "starts: claim rows (and idle claims)")
    _timed(clocks, migration_engine, "reserve_counters", "starts: reserve counters (1 txn)")
    _timed(clocks, MigrationCommandTemplate, "build", "starts: build 0x0106 (sign, ECDH, GMAC)")
    _timed(clocks, engine.device_keys, "public_key", "device public keys")
    _timed(clocks, mr, "record_starts", "starts: record commands + IN_FLIGHT")
    _timed(clocks, mr, "still_claimed", "starts: check claims")
    _timed(clocks, mr, "audit_many", "audit entries")
    _timed(clocks, migration_recovery, "deliver_all", "starts: hand over to the meters")
    _timed(clocks, mr, "mark_sent", "starts: mark Sent")
    _timed(clocks, engine, "step", "engine step (all)")


def _backend_cpu(store: Store) -> float:
    """CPU seconds of this process's PostgreSQL backends (this machine, /proc)."""
    with store.engine.connect() as conn:
        name = conn.exec_driver_sql("SHOW application_name").scalar()
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %(a)s", {"a": name}
        ).scalars()
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def service_main(
    url: str,
    pki_dir: str,
    pipe: Pipe,
    start: Any,
    results: Any,
    n: int,
    batch: int,
    profile_to: str | None,
) -> None:
    """Runs the product's engine (as ``openecos migrate run`` does) until every meter is done."""
    store = Store.open(url, run_migrations=False)
    pki_path = Path(pki_dir)
    keys = resolve_service_keys(open_keystore([pki_path]), DccKeyNames())
    identities = resolve_migration_identities(keys, ServiceTrust.from_test_pki(pki_path), store)
    delivery = PipeDelivery(pipe)
    engine = MigrationEngine(
        store,
        identities,
        SystemClock(),
        delivery,
        worker_id="bench",
        config=EngineConfig(batch=batch, answers_batch=batch),
    )
    clocks = Clocks()
    _instrument(engine, clocks)
    mig = migration_repository(store)
    profiler = cProfile.Profile() if profile_to else None
    assert pipe.recv() == "ready"
    start.wait()
    began = time.monotonic()
    cpu0 = time.process_time()
    steps = idle = 0
    if profiler is not None:
        profiler.enable()
    while True:
        steps += 1
        if engine.step():
            continue
        counts = mig.counts_by_status()
        if counts.get(MigrationStatus.MIGRATED, 0) + counts.get(MigrationStatus.EXCEPTION, 0) >= n:
            break
        idle += 1
        time.sleep(0.001)  # waiting for the meters' answers
    if profiler is not None:
        profiler.disable()
        assert profile_to
        profiler.dump_stats(profile_to)
    ended = time.monotonic()
    cpu = time.process_time() - cpu0
    backends = _backend_cpu(store)
    delivery.close()
    pipe.send(None)
    meter_stats = pipe.recv()
    counts = mig.counts_by_status()
    store.close()
    results.put(
        {
            "began": began,
            "ended": ended,
            "counts": {s.name: c for s, c in counts.items()},
            "clocks": clocks.parts,
            "cpu": cpu,
            "backends": backends,
            "steps": steps,
            "idle": idle,
            "meters": meter_stats,
        }
    )


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The service process and the meters' process; returns what they measured."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    ours, theirs = ctx.Pipe()
    profiles = (
        (f"{args.profile}/service.prof", f"{args.profile}/meters.prof")
        if args.profile
        else (None, None)
    )
    meter_url = _named(url, "meters")
    processes = [
        ctx.Process(
            target=meters_main,
            args=(theirs, meter_url, args.pki_dir, args.meters, args.shared_verdicts, profiles[1]),
        ),
        ctx.Process(
            target=service_main,
            args=(
                _named(url, "service"),
                *(args.pki_dir, ours, start, results),
                *(args.meters, args.batch, profiles[0]),
            ),
        ),
    ]
    for process in processes:
        process.start()
    time.sleep(0.5)
    start.set()
    result: dict[str, Any] = results.get()
    for process in processes:
        process.join()
    result["elapsed"] = result["ended"] - result["began"]
    return result


def _named(url: str, role: str) -> str:
    """``url`` with an application name, so the bench can find its PostgreSQL backends."""
    parsed = make_url(url)
    return parsed.update_query_dict(
        {"application_name": f"bench-{role}-{os.getpid()}"}
    ).render_as_string(hide_password=False)


def _print_profile(path: str, title: str, top: int) -> None:
    print(f"\n{title} (cProfile, top {top} by own time)")
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="engine batch (starts, answers)")
    parser.add_argument(
        "--in-flight", type=int, default=2_000, help="capacity: commands in flight at once"
    )
    parser.add_argument("--url", default=os.environ.get("OPENECOS_PG_URL", DEFAULT_URL))
    parser.add_argument(
        "--shared-verdicts",
        action="store_true",
        help="let meters share path verdicts (the simulator's default; not a real meter)",
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile both processes into DIR")
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    schema = f"bench_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_plain(args.url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = (
        make_url(args.url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    pki_dir = tempfile.TemporaryDirectory(prefix="openecos-bench-pki-")
    write_test_pki(sandbox_pki(), Path(pki_dir.name))
    args.pki_dir = pki_dir.name
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        store = setup(url, pki_dir.name, args.meters, in_flight=args.in_flight)
        print(
            f"setup: {args.meters:,} eligible meters, 2 device certificates each: "
            f"{time.perf_counter() - t:.1f} s"
        )
        floor = _floor(pki_dir.name)
        load = os.getloadavg()
        before, before_cpu = floor_rate(floor)
        result = run(url, args)
        after, after_cpu = floor_rate(floor)
        one_core = max(before, after)
        floor_cpu = 1 / max(before_cpu, after_cpu)  # CPU seconds a meter
        two_cores = 2 * one_core
        counts = result["counts"]
        migrated = counts.get("MIGRATED", 0)
        rate = migrated / result["elapsed"]
        with store.engine.connect() as conn:
            rows, _ = emrr.emrr_rows(conn)
            assert (rows, _) == emrr.recount_rows(conn)
            counters = conn.exec_driver_sql(
                "SELECT count(*), count(DISTINCT originator_counter) FROM commands"
            ).one()
        assert counters[0] == counters[1], "a signing counter was used twice"
        emrr_migrated = sum(r.count for r in rows if r.status is MigrationStatus.MIGRATED)

        meters = result["meters"]
        print(
            f"\nMigration, {args.meters:,} meters: the engine (MigrationEngine.step, batches of "
            f"{args.batch}, {args.in_flight} in flight at most) in one process, the meters in "
            f"another; meters {'share' if args.shared_verdicts else 'do not share'} path verdicts"
        )
        print(
            f"  statuses {counts}; EMRR counts {emrr_migrated:,} migrated; meter rejections "
            f"{meters['rejected']}; {counters[0]:,} commands, no counter twice"
        )
        print(f"  subject: {rate:>10,.0f} meters/s   {1e6 / rate:>8.1f} µs/meter")
        print(
            f"  floor, one core: {one_core:>6,.0f} meters/s   {1e6 / one_core:>8.1f} µs/meter"
            f"   (before {before:,.0f}, after {after:,.0f})"
        )
        print(f"  floor, two cores: {two_cores:>5,.0f} meters/s")
        print(
            f"  ratio to the two-core floor: {rate / two_cores:.0%}"
            "   (targets: ≥ 3,000/s and ≥ 50%)"
        )
        n = max(1, migrated)
        elapsed = result["elapsed"]
        print(
            f"\nCPU per meter (µs): service process {result['cpu'] / n * 1e6:.0f}, meters' "
            f"process {meters['cpu'] / n * 1e6:.0f}, PostgreSQL backends "
            f"{(result['backends'] + meters['backends']) / n * 1e6:.0f} (service's "
            f"{result['backends'] / n * 1e6:.0f}, meters' {meters['backends'] / n * 1e6:.0f}); "
            f"wall {elapsed / n * 1e6:.0f} µs/meter; {result['steps']} engine steps, "
            f"{result['idle']} idle"
        )
        cpu = (result["cpu"] + meters["cpu"] + result["backends"] + meters["backends"]) / n
        print(
            f"  all of it {cpu * 1e6:.0f} µs of CPU a meter against the floor's "
            f"{floor_cpu * 1e6:.0f} µs of CPU: {floor_cpu / cpu:.0%} of the floor if the two "
            f"cores were the bench's alone and always busy (at most {2 / cpu:,.0f} meters/s); "
            f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
        print(
            "Where the time goes (µs per meter inside each process, nested; CPU is the "
            "process's own, the clock adds waiting for PostgreSQL and for a core)"
        )
        print(f"  {'':<58} {'CPU':>8} {'clock':>8}")
        for name, (wall, cpu_s) in sorted(meters["clocks"].items()):
            print(f"  {name:<58} {cpu_s / n * 1e6:>8.1f} {wall / n * 1e6:>8.1f}")
        for name, (wall, cpu_s) in sorted(result["clocks"].items()):
            print(f"  service: {name:<49} {cpu_s / n * 1e6:>8.1f} {wall / n * 1e6:>8.1f}")
        if args.profile:
            _print_profile(f"{args.profile}/service.prof", "service process", args.top)
            _print_profile(f"{args.profile}/meters.prof", "meters' process", args.top)
        store.close()
    finally:
        pki_dir.cleanup()
        if not args.keep:
            with psycopg.connect(_plain(args.url), autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _floor(pki_dir: str) -> Floor:
    """The floor over a real command and response (their byte counts)."""
    pki = load_test_pki(Path(pki_dir))
    profile = meter_profile(pki, shared_verdicts=False)
    device = Eui64.from_int(FIRST)
    credential = EcosCredential.from_der(
        pki.entry("ecos-ds").certificate.der, tuple(c.der for c in pki.organisation_path)
    )
    command = build_migration_command(
        credential,
        tcos=TCOS_PARTY,
        device=device,
        originator_counter=5,
        ecos_counter_floor=0,
        signer=DeviceKey(pki.entry("tcos-ds").private_key()),
        acb_key_agreement=DeviceKey(pki.entry("acb-ka").private_key()),
        device_key_agreement_key=profile.keys.public_key(device, KeyUsage.KEY_AGREEMENT),  # type: ignore[attr-defined]
    )
    meter = commission_sandbox_meter(pki, device, profile)
    response = handle(meter, command, datetime.now(UTC), profile).outputs[0].message
    return Floor(pki, command, response)


if __name__ == "__main__":
    main()
