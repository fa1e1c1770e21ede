"""bench/migration.py's driver loop at a few dozen meters: every meter migrated, durably.

The benchmark's figures mean something only if its loop does the real work:
the meters accept every command (MAC, signature, certificate path checked
by each meter), the service verifies every answer, and the store ends with
every meter MIGRATED, every command answered, the inventory flipped to ECoS
and EMRR's counters equal to a recount.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import text

from openecos.device import commission_sandbox_meter
from openecos.device.state import MeterState
from openecos.eui import Eui64
from openecos.migration import MigrationStatus
from openecos.network import Fleet
from openecos.smki import sandbox_pki
from openecos.smki.testpki_files import load_test_pki, write_test_pki
from openecos.store import emrr

pytestmark = pytest.mark.postgres

BENCH = Path(__file__).resolve().parents[2] / "bench" / "migration.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_migration", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_driver_migrates_every_meter_with_checks_on_both_sides(pg_url: str, tmp_path: Path) -> None:
    bench = _bench()
    write_test_pki(sandbox_pki(), tmp_path)
    pki = load_test_pki(tmp_path)
    n = 30
    store = bench.setup(pg_url, str(tmp_path), n, processes=1)
    profile = bench.meter_profile(pki, shared_verdicts=False)
    first = commission_sandbox_meter(pki, Eui64.from_int(bench.FIRST), profile)
    fleet = Fleet(profile)
    for i in range(n):
        fleet.add(MeterState(Eui64.from_int(bench.FIRST + i), first.cells, first.seq_numbers))
    service = bench.Service(store, pki, bench.Clocks())
    while batch := service.start_batch(7):
        answers = []
        for device, command in batch:
            transition = fleet.handle(Eui64(device), command, bench.NOW)
            assert transition.rejection is None
            answers.append((device, transition.outputs[0].message))
        service.apply(answers)
    assert (service.migrated, service.failed) == (n, 0)
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


def test_a_meter_refuses_a_command_whose_mac_is_for_another_meter(
    pg_url: str, tmp_path: Path
) -> None:
    bench = _bench()
    write_test_pki(sandbox_pki(), tmp_path)
    pki = load_test_pki(tmp_path)
    store = bench.setup(pg_url, str(tmp_path), 2, processes=1)
    profile = bench.meter_profile(pki, shared_verdicts=False)
    first = commission_sandbox_meter(pki, Eui64.from_int(bench.FIRST), profile)
    service = bench.Service(store, pki, bench.Clocks())
    batch = service.start_batch(2)
    (_, command_0), (device_1, _) = batch
    # The command for meter 0, delivered to meter 1: wrong recipient, wrong MAC key.
    meter_1 = MeterState(Eui64(device_1), first.cells, first.seq_numbers)
    transition = Fleet(profile, [meter_1]).handle(Eui64(device_1), command_0, bench.NOW)
    assert transition.rejection is not None and transition.outputs == ()
    service.apply([(device_1, None), (batch[0][0], None)])
    assert service.failed == 2
    store.close()
