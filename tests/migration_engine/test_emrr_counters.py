"""EMRR counters wired into the product: after real engine runs they equal a full recount,
and registration changes move meters between suppliers (both databases; on SQLite the
report is the recount itself, on PostgreSQL the counters kept by triggers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select
from typer.testing import CliRunner

from openecos.cli import app as cli
from openecos.migration import MigrationStatus, report_from_counts
from openecos.network import MeterFaults
from openecos.service.migration_delivery import FaultPlan
from openecos.store import emrr, schema
from openecos.store.csv_import import import_registrations
from tests.migration_engine.world import World, drive, make_world, mpxn_of, supplier_of

S = MigrationStatus
METERS = 16


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, meters=METERS, ecos=[3], born_ecos=[4])
    # Meter 5 has no registration when it is enrolled (counts under no supplier).
    with w.store.engine.begin() as conn:
        conn.execute(delete(schema.registrations).where(schema.registrations.c.mpxn == mpxn_of(5)))
    w.configure(capacity=(1_000, 1_000, 5))
    w.start()
    yield w
    w.close()


def _estate(world: World) -> dict[str | None, int]:
    return {r.supplier: r.counts.estate for r in world.desk().emrr_reports()}


def _ledger_rows(world: World) -> int:
    with world.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.emrr_counts)).scalar_one())


def test_after_engine_runs_with_faults_the_report_equals_a_full_recount(world: World) -> None:
    plan = FaultPlan(MeterFaults(busy=0.3, reboot=0.2, malformed_response=0.1), seed=11)
    engine = world.engine(plan=plan)
    for rounds in (2, 5, None):  # part of the way, further, then to the end
        if rounds is None:
            drive(world, engine)
        else:
            for _ in range(rounds):
                engine.step()
        now = world.clock.now()
        counted = world.mig.report_rows(now)
        recounted = world.mig.recount_rows(now)
        assert sorted(counted[0], key=repr) == sorted(recounted[0], key=repr)
        assert sorted(counted[1], key=repr) == sorted(recounted[1], key=repr)
    if world.store.engine.dialect.name == "postgresql":
        assert _ledger_rows(world) > 0  # the report read the counters, not a scan
    reports = world.desk().emrr_reports()
    overall = reports[0]
    # Every meter once: the suppliers' meters and meter 5, registered to nobody.
    assert overall.counts.estate == METERS == 1 + sum(r.counts.estate for r in reports[1:])
    assert overall.counts.total == METERS
    assert overall.counts.migrated == sum(1 for m in world.meters if _migrated(world, m))


def _migrated(world: World, device: object) -> bool:
    record = world.mig.get(device)  # type: ignore[arg-type]
    return record is not None and record.status is S.MIGRATED


def test_compaction_folds_the_ledger_without_changing_the_report(world: World) -> None:
    engine = world.engine()
    drive(world, engine)
    now = world.clock.now()
    before = world.mig.report_rows(now)
    world.clock.advance(engine.config.emrr_every)
    if world.store.engine.dialect.name != "postgresql":
        # No ledger on SQLite (the report recounts): upkeep must leave the figures alone.
        engine.emrr_upkeep()
        assert world.mig.report_rows(world.clock.now()) == before
        return
    rows_before = _ledger_rows(world)
    engine.emrr_upkeep()
    assert _ledger_rows(world) < rows_before
    assert world.mig.report_rows(world.clock.now()) == before


def test_a_supplier_report_shows_only_that_suppliers_meters(world: World) -> None:
    drive(world, world.engine())
    estate = _estate(world)
    expected_a = sum(1 for i in range(METERS) if supplier_of(i) == "A" and i != 5)
    expected_b = sum(1 for i in range(METERS) if supplier_of(i) == "B" and i != 5)
    assert estate == {None: METERS, "A": expected_a, "B": expected_b}
    counts, daily = world.mig.report_rows(world.clock.now())
    a = report_from_counts(counts, daily, as_of=world.clock.now().date(), supplier="A")
    migrated_a = sum(
        1
        for i, m in enumerate(world.meters)
        if supplier_of(i) == "A" and i != 5 and _migrated(world, m)
    )
    assert a.counts.migrated == migrated_a


def test_a_change_of_supplier_written_now_moves_the_meter_at_once(world: World) -> None:
    engine = world.engine()
    drive(world, engine)
    before = _estate(world)  # the report synced attribution at this instant
    # Back-dated before that sync: only the writer's note can tell the report about it.
    world.store.registrations.change_supplier(
        mpxn_of(0), "BBBB", world.clock.now() - timedelta(minutes=5)
    )
    after = _estate(world)
    assert after["A"] == before["A"] - 1 and after["B"] == before["B"] + 1
    assert after[None] == before[None]
    now = world.clock.now()
    assert sorted(world.mig.report_rows(now)[0], key=repr) == sorted(
        world.mig.recount_rows(now)[0], key=repr
    )


def test_a_change_of_supplier_dated_tomorrow_moves_the_meter_when_the_day_comes(
    world: World,
) -> None:
    engine = world.engine()
    drive(world, engine)
    world.store.registrations.change_supplier(
        mpxn_of(2), "BBBB", world.clock.now() + timedelta(days=1)
    )
    before = _estate(world)
    world.clock.advance(timedelta(days=1, minutes=1))
    engine.emrr_upkeep()  # the engine's periodic sync moves it; the report finds it done
    if world.store.engine.dialect.name == "postgresql":
        with world.store.engine.connect() as conn:
            supplier = conn.execute(
                select(schema.emrr_attribution.c.supplier).where(
                    schema.emrr_attribution.c.device == world.meters[2].hex
                )
            ).scalar_one()
        assert supplier == "B"
    after = _estate(world)
    assert after["A"] == before["A"] - 1 and after["B"] == before["B"] + 1


def test_registrations_imported_from_csv_move_meters_into_a_suppliers_report(
    world: World,
) -> None:
    drive(world, world.engine())
    before = _estate(world)
    assert before["A"] == sum(1 for i in range(METERS) if supplier_of(i) == "A" and i != 5)
    start = (world.clock.now() - timedelta(days=30)).isoformat()
    result = import_registrations(
        world.store,
        f"mpxn,supplier_mpid,effective_from,effective_to\n{mpxn_of(5)},AAAA,{start},\n".encode(),
    )
    assert result.ok, result.errors
    after = _estate(world)
    assert after["A"] == before["A"] + 1 and after[None] == METERS
    now = world.clock.now()
    assert sorted(world.mig.report_rows(now)[0], key=repr) == sorted(
        world.mig.recount_rows(now)[0], key=repr
    )


def test_a_refused_registration_import_notes_nothing(world: World) -> None:
    drive(world, world.engine())
    before = _estate(world)
    result = import_registrations(
        world.store,
        f"mpxn,supplier_mpid,effective_from,effective_to\n{mpxn_of(5)},ZZZZ,2026-01-01,\n".encode(),
    )
    assert not result.ok
    with world.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.emrr_pending)).scalar_one() == 0
    assert _estate(world) == before


def test_the_migrated_database_counts_what_was_there_before_the_counters(
    tmp_path: Path, db_url: str
) -> None:
    # install() after rows exist (a database migrated from version 5) counts them once.
    w = make_world(tmp_path, db_url, meters=6)
    try:
        w.configure()
        w.start()
        drive(w, w.engine())
        with w.store.engine.begin() as conn:
            emrr.install(conn)  # idempotent: a second install recounts, never doubles
        now = w.clock.now()
        assert sorted(w.mig.report_rows(now)[0], key=repr) == sorted(
            w.mig.recount_rows(now)[0], key=repr
        )
    finally:
        w.close()


def test_the_triggers_name_the_migrated_status_as_the_table_stores_it() -> None:
    assert MigrationStatus.MIGRATED.name == emrr._MIGRATED


def _add_to_ledger(world: World, supplier: str, n: int) -> None:
    """A delta row no meter change made: visible only to a reader of the counters."""
    with world.store.engine.begin() as conn:
        conn.execute(
            insert(schema.emrr_counts).values(
                supplier=supplier, status="ELIGIBLE", ineligible=None, migrated_on=None, n=n
            )
        )


@pytest.mark.postgres
def test_the_cli_report_reads_the_counters_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    w = make_world(tmp_path, pg_url, meters=6)
    try:
        w.configure()
        w.start()
        drive(w, w.engine())
        runner = CliRunner()

        def estate() -> int:
            result = runner.invoke(cli, ["report", "emrr", "--store", w.url, "--supplier", "A"])
            assert result.exit_code == 0, result.output
            return int(json.loads(result.output)["estate"])

        assert estate() == 3
        _add_to_ledger(w, "A", 2)
        assert estate() == 5  # a recount would still say 3
        _add_to_ledger(w, "A", -2)
        assert estate() == 3
    finally:
        w.close()


@pytest.mark.postgres
def test_two_first_syncs_at_once_both_succeed(tmp_path: Path, pg_url: str) -> None:
    # Two engine processes starting together both find no sync instant and both sync.
    w = make_world(tmp_path, pg_url, meters=4)
    try:
        w.configure()
        drive(w, w.engine())  # enrolled (attributed), but never synced: no instant yet
        with w.store.engine.begin() as conn:
            state = schema.service_state
            conn.execute(delete(state).where(state.c.name == emrr.ATTRIBUTED_AT))
            conn.execute(delete(schema.emrr_attribution))
        now = w.clock.now()
        first = w.store.engine.connect()
        first.begin()
        assert emrr.sync_attribution(first, now) == 4  # holds the attribution rows
        errors: list[BaseException] = []

        def second() -> None:
            try:
                with w.store.engine.begin() as conn:
                    emrr.sync_attribution(conn, now)  # waits for the first, then upserts
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # waiting on the first one's rows
        first.commit()
        first.close()
        thread.join(30)
        assert not thread.is_alive() and errors == []
        assert sorted(w.mig.report_rows(now)[0], key=repr) == sorted(
            w.mig.recount_rows(now)[0], key=repr
        )
    finally:
        w.close()
