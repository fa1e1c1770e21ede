"""Enrolment from the queue the database fills as devices are inserted (no inventory rescan)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from openecos.eui import Eui64
from openecos.migration import IneligibleReason, MigrationStatus
from openecos.store import (
    LATEST_VERSION,
    MIGRATIONS,
    CosCredentialState,
    Device,
    DeviceStatus,
    DeviceType,
    enrolment,
    migrate,
    open_engine,
    schema,
)
from openecos.store.csv_import import DEVICE_COLUMNS, import_devices
from openecos.store.engine import write_transaction
from openecos.store.migration import migration_transaction
from tests.migration_engine.world import World, drive, make_world

S = MigrationStatus


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, meters=4)
    w.configure()
    w.start()
    yield w
    w.close()


def _queued(world: World) -> int:
    with world.store.engine.connect() as conn:
        return enrolment.queued(conn)


def _new_device(n: int, model: str = "OTHER-9") -> Device:
    return Device(
        eui=Eui64.parse(f"00DB14{n:010X}"),
        device_type=DeviceType.ESME,
        status=DeviceStatus.COMMISSIONED,
        mpxn=None,
        manufacturer="OPENECOS",
        model=model,
        firmware_version="1.0",
        credential_state=CosCredentialState.TCOS,
        born_ecos=False,
    )


def _csv(devices: list[Device]) -> bytes:
    lines = [",".join(DEVICE_COLUMNS)]
    for d in devices:
        fields = (d.eui.hex, "ESME", "Commissioned", "", d.manufacturer, d.model, "1.0")
        lines.append(",".join((*fields, "TCOS", "false")))
    return ("\n".join(lines) + "\n").encode()


def test_inventory_inserts_queue_their_devices_in_the_same_transaction(world: World) -> None:
    assert _queued(world) == 4  # make_world inserted them with plain INSERTs
    drive(world, world.engine())
    assert _queued(world) == 0
    world.store.devices.add(_new_device(1))
    assert _queued(world) == 1
    with pytest.raises(RuntimeError), world.store.transaction() as tx:
        tx.devices.add(_new_device(2))
        raise RuntimeError("rolled back")
    assert _queued(world) == 1  # the rolled-back insert queued nothing


def test_devices_imported_while_migration_runs_are_enrolled(world: World) -> None:
    engine = world.engine()
    engine.step()
    engine.step()
    added = [_new_device(10), _new_device(11)]
    result = import_devices(world.store, _csv(added))
    assert result.ok, result.errors
    world.store.devices.add(_new_device(12))
    drive(world, engine)
    for device in [*added, _new_device(12)]:
        record = world.mig.get(device.eui)
        assert record is not None, device.eui
        assert (record.status, record.ineligible) == (
            S.INELIGIBLE,
            IneligibleReason.MODEL_NOT_APPROVED,
        )
    for device in world.meters:
        assert world.mig.get(device).status is S.MIGRATED  # type: ignore[union-attr]
    assert _queued(world) == 0
    overall = world.desk().emrr()
    assert overall.counts.estate == 7


def test_an_enrolment_that_fails_leaves_its_devices_queued(world: World) -> None:
    with pytest.raises(RuntimeError), migration_transaction(world.store) as mtx:
        popped, rows = enrolment.take(mtx.connection, 10)
        assert popped == 4 and [r.eui for r in rows] == sorted(world.meters)
        raise RuntimeError("killed before commit")
    assert _queued(world) == 4
    world.engine().enrol(world.engines[0].settings(), world.engines[0].regimes.current())
    assert _queued(world) == 0
    assert all(world.mig.get(d) is not None for d in world.meters)


def test_a_queued_device_that_was_deleted_or_already_enrolled_is_dropped(world: World) -> None:
    engine = world.engine()
    drive(world, engine)
    device = _new_device(20)
    world.store.devices.add(device)
    with world.store.engine.begin() as conn:  # queued again although it has a row
        conn.execute(insert(schema.migration_enrol).values(device=world.meters[0].hex))
        conn.execute(schema.devices.delete().where(schema.devices.c.eui == device.eui))
    before = world.mig.get(world.meters[0])
    assert engine.enrol(engine.settings(), engine.regimes.current()) == 2
    assert _queued(world) == 0
    assert world.mig.get(world.meters[0]) == before
    assert world.mig.get(device.eui) is None


@pytest.mark.postgres
def test_two_engines_take_disjoint_devices(tmp_path: Path, pg_url: str) -> None:
    w = make_world(tmp_path, pg_url, meters=6)
    try:
        first = w.store.engine.connect()
        second = w.store.engine.connect()
        with first.begin(), second.begin():
            popped_1, rows_1 = enrolment.take(first, 4)
            popped_2, rows_2 = enrolment.take(second, 4)  # skips the rows the first holds
            assert (popped_1, popped_2) == (4, 2)
            assert {r.eui for r in rows_1}.isdisjoint({r.eui for r in rows_2})
        first.close()
        second.close()
    finally:
        w.close()


def test_a_database_upgraded_to_the_queue_queues_its_unenrolled_devices(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        with write_transaction(engine) as conn:
            schema.schema_version.create(conn)
            for step in MIGRATIONS:
                if step.version >= 7:
                    break
                step.apply(conn)
                conn.execute(
                    insert(schema.schema_version).values(
                        version=step.version,
                        description=step.description,
                        applied_at=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                )
        with engine.begin() as conn:  # version 6: no trigger yet
            values = [
                {
                    "eui": _new_device(n).eui,
                    "device_type": DeviceType.ESME,
                    "status": DeviceStatus.COMMISSIONED,
                    "manufacturer": "X",
                    "model": "Y",
                    "credential_state": CosCredentialState.TCOS,
                    "born_ecos": False,
                }
                for n in range(3)
            ]
            conn.execute(insert(schema.devices), values)
        assert migrate(engine) == LATEST_VERSION
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(schema.migration_enrol))
            assert count.scalar_one() == 3
    finally:
        engine.dispose()
