"""bench/migration.py's setup and meters, driven in one process: every meter migrated, durably.

The benchmark's figures mean something only if what it runs does the real
work: the product's ``MigrationEngine`` over the bench's estate, the meters
accepting every command (MAC, signature, certificate path checked by each
meter), the service verifying every answer, and the store ending with every
meter MIGRATED, every command answered, the inventory flipped to ECoS and
EMRR's counters equal to a recount. Here the two processes of the bench are
one loop: the engine steps, the fleet answers what it was handed.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import text

from openecos.device import commission_sandbox_meter
from openecos.device.state import MeterState
from openecos.eui import Eui64
from openecos.keys import open_keystore
from openecos.migration import MigrationStatus
from openecos.network import Fleet
from openecos.service.clock import SystemClock
from openecos.service.identities import DccKeyNames, ServiceTrust, resolve_service_keys
from openecos.service.migration_engine import EngineConfig, MigrationEngine
from openecos.service.migration_identities import resolve_migration_identities
from openecos.smki import sandbox_pki
from openecos.smki.testpki_files import load_test_pki, write_test_pki
from openecos.store import Store, emrr

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[2] / "bench" / "migration.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_migration", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Handed:
    """A batch ``Deliver`` that keeps what the engine handed over, for the fleet to answer."""

    def __init__(self) -> None:
        self.commands: list[tuple[Eui64, bytes]] = []

    def __call__(self, device: Eui64, party: Eui64, counter: int, message: bytes) -> bool:
        return self.deliver_many([(device, party, counter, message)])[0]

    def deliver_many(self, commands: Sequence[tuple[Eui64, Eui64, int, bytes]]) -> list[bool]:
        self.commands.extend((device, message) for device, _, _, message in commands)
        return [True] * len(commands)


def _world(bench: ModuleType, url: str, tmp_path: Path, n: int) -> tuple[Store, Fleet, Any]:
    write_test_pki(sandbox_pki(), tmp_path)
    store = bench.setup(url, str(tmp_path), n, in_flight=n, processes=1)
    pki = load_test_pki(tmp_path)
    profile = bench.meter_profile(pki, shared_verdicts=False, meters=n)
    first = commission_sandbox_meter(pki, Eui64.from_int(bench.FIRST), profile)
    fleet = Fleet(profile)
    for i in range(n):
        fleet.add(MeterState(Eui64.from_int(bench.FIRST + i), first.cells, first.seq_numbers))
    return store, fleet, first


def _engine(store: Store, tmp_path: Path, delivery: _Handed, batch: int) -> MigrationEngine:
    keys = resolve_service_keys(open_keystore([tmp_path]), DccKeyNames())
    identities = resolve_migration_identities(keys, ServiceTrust.from_test_pki(tmp_path), store)
    config = EngineConfig(batch=batch, answers_batch=batch)
    return MigrationEngine(store, identities, SystemClock(), delivery, worker_id="t", config=config)


def test_bench_world_migrates_every_meter_with_checks_on_both_sides(
    pg_url: str, tmp_path: Path
) -> None:
    bench = _bench()
    n = 30
    store, fleet, _ = _world(bench, pg_url, tmp_path, n)
    delivery = _Handed()
    engine = _engine(store, tmp_path, delivery, batch=7)
    for _ in range(200):
        worked = engine.step()
        handed, delivery.commands = delivery.commands, []
        now = datetime.now(UTC)
        outputs = []
        for device, command in handed:
            transition = fleet.handle(device, command, now)
            assert transition.rejection is None
            outputs += [
                (device, o.kind.value, o.recipient, o.originator_counter, o.message)
                for o in transition.outputs
            ]
        with store.transaction(durable=False) as tx:
            tx.estate.add_outputs(outputs, at=now)
        if not worked and not handed:
            break
    with store.engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT status, count(*) FROM migration_meters GROUP BY 1")
        ).all()
        flipped = conn.execute(
            text("SELECT count(*) FROM devices WHERE credential_state = 'ECOS'")
        ).scalar()
        answered = conn.execute(
            text(
                "SELECT count(*) FROM commands WHERE status = 'Succeeded' AND response IS NOT NULL"
            )
        ).scalar()
        counts, daily = emrr.emrr_rows(conn)
        assert (counts, daily) == emrr.recount_rows(conn)
    assert statuses == [(MigrationStatus.MIGRATED.name, n)]
    assert flipped == answered == n
    assert sum(r.count for r in counts if r.status is MigrationStatus.MIGRATED) == n
    store.close()


def test_a_bench_meter_refuses_a_command_whose_mac_is_for_another_meter(
    pg_url: str, tmp_path: Path
) -> None:
    bench = _bench()
    store, fleet, _ = _world(bench, pg_url, tmp_path, 2)
    delivery = _Handed()
    engine = _engine(store, tmp_path, delivery, batch=2)
    engine.step()
    (device_0, command_0), (device_1, _) = sorted(delivery.commands)
    # The command for meter 0, delivered to meter 1: wrong recipient, wrong MAC key.
    transition = fleet.handle(device_1, command_0, datetime.now(UTC))
    assert transition.rejection is not None and transition.outputs == ()
    assert device_0 != device_1
    store.close()
