"""Engine worker processes on one PostgreSQL: killed at random moments, and two at once.

Workers are ``openecos migrate run`` subprocesses (real time, 5% injected
meter faults) over a store whose meters have their device certificates and
cells in the inventory, as a sandbox's do.

- SIGKILL at a random moment, at least 20 times in one run, then a healthy
  worker finishes: nothing is lost, no signing counter is used twice, and
  every meter ends migrated or an exception naming why.
- Two workers at once never migrate a meter twice: one successful 0x0106 per
  meter at most, and a meter's 0x0106 commands never overlap in time.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from openecos.migration import MigrationStatus
from openecos.migration.command import MESSAGE_CODE
from openecos.service.migration_settings import PolicySettings
from openecos.smki.sandbox import TCOS_PARTY
from openecos.store import CommandStatus, Store, schema
from openecos.store.migration import migration_repository
from tests.migration_engine.world import World, make_world

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
S = MigrationStatus

#: Real seconds: answers within 2 s, reads 1 s after, backoffs of about a second.
REAL_TIME_POLICY = PolicySettings(
    response_timeout=2.0,
    read_delay=1.0,
    review_interval=86400.0,
    reassess_interval=1.0,
    backoff_scale=0.0005,
)


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[World]:
    w = make_world(tmp_path, pg_url, meters=300)
    w.configure(capacity=(1_000_000, 1_000_000, 8), policy=REAL_TIME_POLICY)
    w.start()
    yield w
    w.close()


def _worker(world: World, worker_id: str) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).with_name("openecos")),
        "migrate", "run",
        "--store", world.url,
        "--pki", str(world.directory / "pki"),
        "--worker-id", worker_id,
        "--batch", "8",
        "--lease", "1",
        "--poll", "0.05",
        "--fault-rate", "0.05",
        "--fault-seed", "11",
    ]  # fmt: skip
    return subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _settled(store: Store) -> bool:
    counts = migration_repository(store).counts_by_status()
    return sum(counts.values()) == 300 and set(counts) <= {S.MIGRATED, S.EXCEPTION}


def _finish(world: World, processes: list[subprocess.Popen[bytes]], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    try:
        while not _settled(world.store):
            assert time.monotonic() < deadline, migration_repository(world.store).counts_by_status()
            assert all(p.poll() is None for p in processes), "a worker died"
            time.sleep(0.2)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _migration_commands(store: Store) -> list[dict[str, object]]:
    c = schema.commands
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(c.c.device, c.c.originator_counter, c.c.status, c.c.created_at, c.c.answered_at)
            .where(c.c.signer == TCOS_PARTY, c.c.message_code == int(MESSAGE_CODE))
            .order_by(c.c.device, c.c.originator_counter)
        ).all()
    return [dict(r._mapping) for r in rows]


def _check_the_end(world: World) -> list[dict[str, object]]:
    store = world.store
    mig = migration_repository(store)
    for device in world.meters:
        record = mig.get(device)  # a row without a reason and a next step cannot be read
        assert record is not None and record.status in (S.MIGRATED, S.EXCEPTION)
        if record.status is S.EXCEPTION:
            assert record.error is not None and record.next_at is not None
    commands = _migration_commands(store)
    counters = [int(c["originator_counter"]) for c in commands]  # type: ignore[call-overload]
    assert len(counters) == len(set(counters))
    last = store.signing_counters.last(TCOS_PARTY)
    assert last is not None and max(counters) <= last
    # Every counter a worker recorded as sent is one command; no counter was sent twice.
    sent = [
        int(e.details["counter"])
        for e in store.audit.entries(limit=1_000_000)
        if e.action == "migration.command-sent"
    ]
    assert len(sent) == len(set(sent)) and set(sent) == set(counters)
    # Nothing is left in flight, and no meter answered two commands with one counter.
    assert not [c for c in commands if c["status"] in (CommandStatus.PREPARED, CommandStatus.SENT)]
    with store.engine.connect() as conn:
        o = schema.sim_meter_outputs
        answers = conn.execute(
            select(o.c.device, o.c.originator_counter).where(o.c.recipient == TCOS_PARTY)
        ).all()
    per_counter = Counter(int(a.originator_counter) for a in answers)
    assert not [n for n, k in per_counter.items() if k > 1 and n not in set(counters)]
    return commands


def _activity(store: Store) -> int:
    a = schema.audit_log
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(a).where(a.c.action.like("migration.%"))
            ).scalar_one()
        )


def test_killing_the_worker_at_random_moments_loses_nothing_and_reuses_no_counter(
    world: World,
) -> None:
    rng = random.Random(2026)
    mid_work = 0
    for kill in range(22):
        process = _worker(world, f"victim-{kill}")
        before = _activity(world.store)
        deadline = time.monotonic() + 5
        while _activity(world.store) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        mid_work += _activity(world.store) > before
        time.sleep(rng.uniform(0.0, 0.5))  # somewhere in the middle of its work
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert mid_work >= 15  # most kills landed while the worker was busy
    _finish(world, [_worker(world, "survivor")])
    commands = _check_the_end(world)
    workers = {
        e.details["worker"]
        for e in world.store.audit.entries(limit=1_000_000)
        if e.action == "migration.command-sent"
    }
    assert len(workers) >= 10  # the work was spread over many lives
    assert len(commands) >= 300 - migration_repository(world.store).count({S.EXCEPTION})


def test_two_workers_at_once_never_migrate_a_meter_twice(world: World) -> None:
    _finish(world, [_worker(world, "left"), _worker(world, "right")])
    commands = _check_the_end(world)
    by_device: dict[object, list[dict[str, object]]] = defaultdict(list)
    for command in commands:
        by_device[command["device"]].append(command)
    for device, attempts in by_device.items():
        succeeded = [c for c in attempts if c["status"] is CommandStatus.SUCCEEDED]
        assert len(succeeded) <= 1, device
        for earlier, later in itertools.pairwise(attempts):
            # One 0x0106 at a time: each attempt was over before the next was made.
            assert earlier["answered_at"] is not None
            assert earlier["answered_at"] <= later["created_at"] + timedelta(0), device
    workers = Counter(
        e.details["worker"]
        for e in world.store.audit.entries(limit=1_000_000)
        if e.action == "migration.command-sent"
    )
    assert set(workers) == {"left", "right"}
