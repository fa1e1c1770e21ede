"""Runs every benchmark in ``bench/`` one after another (``make bench``).

Each benchmark prints its own subject, its floor measured in the same run and
the ratio; this runner only starts them in turn, with sizes that finish in a
few minutes on the standard machine, and says which failed. ``--full`` uses the
sizes recorded in ``docs/benchmarks.md`` (the 30-million-meter EMRR load alone
takes about twenty minutes and 19 GiB of PostgreSQL).

Usage::

    .venv/bin/python bench/run.py [--full] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name → (arguments for a quick run, arguments for the recorded run)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "gbcs_codec": ([], []),
    "estate_memory": (["--sizes", "10000,100000"], ["--sizes", "10000,100000,1000000"]),
    "emrr_scale": (["--meters", "100000"], ["--meters", "30000000"]),
    "migration": (["--meters", "4000"], ["--meters", "20000"]),
    "cos_http": (
        ["--lanes", "32", "--switches", "300", "--rate", "200", "--seconds", "2"],
        ["--lanes", "64", "--switches", "1000", "--rate", "500", "--seconds", "4"],
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the sizes in docs/benchmarks.md")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for name, (quick, full) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        command = [sys.executable, str(HERE / f"{name}.py"), *(full if args.full else quick)]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command)
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
