"""Small timing helpers shared by the benchmarks in bench/.

Each benchmark measures the thing and its floor in the same run, on one core,
and prints the ratio: absolute figures vary from machine to machine and from
minute to minute, the ratio much less. Figures are best-of-N rates over fixed
work, so a noisy neighbour lowers a rate but seldom raises it.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass


def pin_to_one_core() -> None:
    """Runs this process on one core where the OS allows it (Linux)."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1]})


@dataclass(frozen=True, slots=True)
class Rate:
    name: str
    per_second: float

    @property
    def micros(self) -> float:
        return 1e6 / self.per_second


def best_rate(name: str, fn: Callable[[], object], *, n: int, repeats: int = 5) -> Rate:
    """The best of ``repeats`` runs of ``n`` calls, as calls per second."""
    for _ in range(max(1, n // 10)):  # warm caches and lazy imports
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return Rate(name, n / best)


def compare(
    subject_name: str,
    subject: Callable[[], object],
    floor_name: str,
    floor: Callable[[], object],
    *,
    n: int,
    repeats: int = 25,
) -> tuple[Rate, Rate]:
    """Best-of rates of subject and floor, their runs interleaved.

    Interleaving matters on a shared machine: a burst of load then slows both
    sides alike instead of whichever happened to be running.
    """
    for _ in range(max(1, n // 10)):
        subject()
        floor()
    best = {subject_name: float("inf"), floor_name: float("inf")}
    # As timeit does: no cyclic garbage collection inside a timed run (neither side
    # makes reference cycles; a collection would land on whichever side was running).
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in ((subject_name, subject), (floor_name, floor)):
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        gc.enable()
    return Rate(subject_name, n / best[subject_name]), Rate(floor_name, n / best[floor_name])


def report(title: str, subject: Rate, floor: Rate, *, target: str) -> float:
    """Prints subject and floor side by side and returns the overhead over the floor."""
    overhead = floor.per_second / subject.per_second - 1.0
    print(f"\n{title}")
    print(f"  {subject.name:<58} {subject.per_second:>10,.0f}/s  {subject.micros:>8.1f} µs")
    print(f"  {floor.name:<58} {floor.per_second:>10,.0f}/s  {floor.micros:>8.1f} µs")
    print(f"  overhead over the floor: {overhead * 100:+.1f}%   (target: {target})")
    return overhead
