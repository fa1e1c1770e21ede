"""Start order by region (the inventory's GSP group) and by supplier (EMRR's attribution)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from openecos.migration import OrderField
from openecos.store import schema
from tests.migration_engine.world import World, drive, make_world, mpxn_of

METERS = 10
#: Meter i's region; meter 9 has none.
REGIONS = ["_C", "_A", "_P", "_A", "_B", "_C", "_B", "_A", "_P", None]


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, meters=METERS)
    with w.store.engine.begin() as conn:
        for i, region in enumerate(REGIONS):
            conn.execute(
                update(schema.devices)
                .where(schema.devices.c.eui == w.meters[i])
                .values(region=region)
            )
    w.configure()
    yield w
    w.close()


def _order(world: World, *fields: OrderField) -> None:
    world.desk().update_settings(
        lambda s: replace(s, order=fields), actor="test", what="start order"
    )


def _started(world: World) -> list[int]:
    """Meter indexes in the order their 0x0106 was started (TCoS counters increase)."""
    counters = {}
    for i, device in enumerate(world.meters):
        record = world.mig.get(device)
        assert record is not None and record.command_counter is not None
        counters[i] = record.command_counter
    return sorted(counters, key=counters.__getitem__)


def _eui(world: World, i: int) -> bytes:
    return world.meters[i].value


def test_starts_follow_the_region_then_the_eui(world: World) -> None:
    _order(world, OrderField.REGION, OrderField.EUI)
    world.start()
    drive(world, world.engine(batch=3))
    expected = sorted(
        range(METERS), key=lambda i: (REGIONS[i] is None, REGIONS[i] or "", _eui(world, i))
    )
    assert _started(world) == expected
    assert expected[:3] == [1, 3, 7]  # the _A meters first, meter 9 (no region) last


def test_starts_follow_the_registered_supplier_then_the_eui(world: World) -> None:
    # Meter 0 moves from A to B before anything is enrolled; meter 5 is registered to nobody.
    world.store.registrations.change_supplier(
        mpxn_of(0), "BBBB", world.clock.now() - timedelta(days=1)
    )
    with world.store.engine.begin() as conn:
        conn.execute(delete(schema.registrations).where(schema.registrations.c.mpxn == mpxn_of(5)))
    _order(world, OrderField.SUPPLIER, OrderField.EUI)
    world.start()
    drive(world, world.engine(batch=4))
    a = [2, 4, 6, 8]
    b = [0, 1, 3, 7, 9]
    assert _started(world) == [*a, *b, 5]


def test_supplier_order_follows_a_change_of_supplier_after_enrolment(world: World) -> None:
    _order(world, OrderField.SUPPLIER, OrderField.EUI)
    engine = world.engine(batch=2)
    engine.step()  # enrolled (attributed) while stopped: nothing starts
    assert all(world.mig.get(d).command_counter is None for d in world.meters)  # type: ignore[union-attr]
    world.store.registrations.change_supplier(mpxn_of(1), "AAAA", world.clock.now())
    world.clock.advance(engine.config.emrr_every)  # the engine's sync takes the change in
    world.start()
    drive(world, engine)
    assert _started(world)[:6] == [0, 1, 2, 4, 6, 8]


def test_settings_accept_every_order_field(world: World) -> None:
    _order(world, *OrderField)
    assert world.desk().settings().order == tuple(OrderField)


def test_a_region_outside_the_gsp_groups_is_refused_by_the_database(world: World) -> None:
    devices = schema.devices
    first = devices.c.eui == world.meters[0]
    with pytest.raises(IntegrityError), world.store.engine.begin() as conn:
        conn.execute(update(devices).where(first).values(region="_I"))
    with world.store.engine.connect() as conn:
        assert conn.execute(select(devices.c.region).where(first)).scalar_one() == "_C"
