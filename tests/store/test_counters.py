"""Signing counters: strictly increasing, unique across processes, never reused after a crash."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from openecos.eui import Eui64
from openecos.store import CounterExhausted, Store
from openecos.store.records import U64_MAX
from tests.store import _workers

ECOS = Eui64.parse("90B3D51F30000005")


def test_counter_starts_at_one_and_increases(store: Store) -> None:
    assert store.signing_counters.last(ECOS) is None
    assert [store.signing_counters.reserve(ECOS) for _ in range(3)] == [1, 2, 3]
    assert store.signing_counters.reserve(Eui64.from_int(9)) == 1  # per entity
    assert store.signing_counters.last(ECOS) == 3


def test_at_least_jumps_forward_but_never_back(store: Store) -> None:
    floor = 0x0000_0189_0000_0000
    assert store.signing_counters.reserve(ECOS, at_least=floor) == floor
    assert store.signing_counters.reserve(ECOS, at_least=5) == floor + 1


def test_counter_reaches_the_top_of_the_u64_range_then_refuses(store: Store) -> None:
    assert store.signing_counters.reserve(ECOS, at_least=U64_MAX - 1) == U64_MAX - 1
    assert store.signing_counters.reserve(ECOS) == U64_MAX
    with pytest.raises(CounterExhausted):
        store.signing_counters.reserve(ECOS)
    assert store.signing_counters.last(ECOS) == U64_MAX


def test_two_processes_reserving_at_once_never_share_a_value(db_url: str) -> None:
    Store.open(db_url).close()
    per_process = 150
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(2) as pool:
        start = manager.Barrier(2)
        jobs = [
            pool.apply_async(_workers.reserve_many, (db_url, ECOS.hex, per_process, start))
            for _ in range(2)
        ]
        results = [job.get(timeout=300) for job in jobs]
    for values in results:
        assert values == sorted(set(values))  # strictly increasing in each process
    every = results[0] + results[1]
    assert len(set(every)) == len(every) == 2 * per_process
    assert sorted(every) == list(range(1, 2 * per_process + 1))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_counter_of_a_killed_process_is_never_handed_out_again(db_url: str) -> None:
    with Store.open(db_url) as store:
        store.signing_counters.reserve(ECOS, at_least=41)
    ctx = multiprocessing.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=_workers.reserve_then_hang, args=(db_url, ECOS.hex, child_end))
    child.start()
    try:
        assert parent_end.poll(120), "child did not reserve"
        reserved = parent_end.recv()
    finally:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)  # the crash: no clean shutdown, no commit hooks
        child.join(30)
    assert reserved == 42
    with Store.open(db_url) as store:
        assert store.signing_counters.last(ECOS) == 42
        assert store.signing_counters.reserve(ECOS) == 43
