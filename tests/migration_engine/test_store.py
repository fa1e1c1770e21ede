"""The migration rows' claims: leases that expire and are taken over, fences, counters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from openecos.migration import ELIGIBLE, EmehraPolicy, MigrationStatus, new_record
from openecos.smki.sandbox import TCOS_PARTY
from openecos.store import LeaseLost
from openecos.store.migration import migration_repository, reserve_counters
from tests.migration_engine.world import START, World, make_world

S = MigrationStatus
LEASE = timedelta(seconds=30)


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, meters=6, fast=True)
    w.mig.insert_many([new_record(m, ELIGIBLE, START, EmehraPolicy()) for m in w.meters])
    yield w
    w.close()


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(world: World) -> None:
    repo = world.mig
    first = repo.claim({S.ELIGIBLE}, "w1", now=START, lease=LEASE, limit=4)
    assert [c.record.device for c in first] == world.meters[:4]
    second = repo.claim({S.ELIGIBLE}, "w2", now=START, lease=LEASE, limit=10)
    assert [c.record.device for c in second] == world.meters[4:]
    later = START + LEASE + timedelta(seconds=1)
    taken = repo.claim({S.ELIGIBLE}, "w3", now=later, lease=LEASE, limit=10)
    assert {c.record.device for c in taken} == set(world.meters)
    # The first owner's fence no longer holds: it changes nothing.
    with pytest.raises(LeaseLost):
        repo.save(first[0].record, claim=first[0])
    assert repo.release(first[1]) is False
    repo.save(taken[0].record, claim=taken[0])  # the new owner's does, releasing the row
    again = repo.claim({S.ELIGIBLE}, "w4", now=later, lease=LEASE, limit=10)
    assert [c.record.device for c in again] == [taken[0].record.device]


def test_rows_not_yet_due_are_not_claimed(world: World) -> None:
    repo = migration_repository(world.store)
    assert (
        repo.claim({S.ELIGIBLE}, "w1", now=START - timedelta(seconds=1), lease=LEASE, limit=9) == []
    )
    assert repo.claim({S.RETRY_WAIT}, "w1", now=START, lease=LEASE, limit=9) == []


def test_counter_blocks_are_durable_disjoint_and_increasing(world: World) -> None:
    first = reserve_counters(world.store, TCOS_PARTY, 10)
    single = world.store.signing_counters.reserve(TCOS_PARTY)
    second = reserve_counters(world.store, TCOS_PARTY, 5)
    assert list(first) == list(range(first.start, first.start + 10))
    assert first.stop <= single < second.start
    assert world.store.signing_counters.last(TCOS_PARTY) == second[-1]
