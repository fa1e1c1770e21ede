"""EMRR at runtime: counts in SQL by the supplier registered now, JSON/CSV over HTTP and CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openecos.cli import app as cli
from openecos.migration import MeterSummary, MigrationStatus, report_from_meters
from openecos.network import MeterFaults
from openecos.service.migration_delivery import FaultPlan
from openecos.store import Registration
from tests.migration_engine.world import World, make_world, mpxn_of, supplier_of

S = MigrationStatus


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, meters=24, ecos=[3], born_ecos=[4, 5])
    w.configure(capacity=(1_000, 1_000, 6))
    w.start()
    plan = FaultPlan(MeterFaults(busy=0.5, reboot=0.3), seed=5)
    engine = w.engine(plan=plan)
    for _ in range(3):  # part of the way: some migrated, some waiting, some in flight
        engine.step()
    yield w
    w.close()


def _summaries(world: World) -> list[MeterSummary]:
    now = world.clock.now()
    out = []
    for i, device in enumerate(world.meters):
        record = world.mig.get(device)
        assert record is not None
        registered = world.store.registrations.registered_supplier(mpxn_of(i), now)
        out.append(MeterSummary.of(record, None if registered is None else registered.party_id))
    return out


def test_sql_counts_equal_the_per_meter_figures_overall_and_per_supplier(world: World) -> None:
    day = world.clock.now().date()
    reports = world.desk().emrr_reports()
    assert [r.supplier for r in reports] == [None, "A", "B"]
    summaries = _summaries(world)
    for report in reports:
        expected = report_from_meters(summaries, as_of=day, supplier=report.supplier)
        assert report == expected
    overall, a, b = reports
    assert overall.counts.estate == 24 == a.counts.estate + b.counts.estate
    assert a.counts.estate == sum(1 for i in range(24) if supplier_of(i) == "A")
    assert overall.counts.in_flight + overall.counts.eligible > 0  # a report mid-migration


def test_a_meter_counts_under_the_supplier_registered_for_it_now(world: World) -> None:
    # Meter 0 (supplier A) changes supplier to B tomorrow.
    tomorrow = world.clock.now() + timedelta(days=1)
    world.store.registrations.change_supplier(mpxn_of(0), "BBBB", tomorrow)
    before = {r.supplier: r.counts.estate for r in world.desk().emrr_reports()}
    world.clock.advance(timedelta(days=1, minutes=1))
    after = {r.supplier: r.counts.estate for r in world.desk().emrr_reports()}
    assert after["A"] == before["A"] - 1 and after["B"] == before["B"] + 1
    assert world.store.registrations.at(mpxn_of(0), world.clock.now()) == Registration(
        mpxn_of(0), "BBBB", tomorrow
    )


def test_the_cli_reports_one_suppliers_meters_as_json_and_csv(world: World) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "emrr", "--store", world.url, "--supplier", "A"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["scope"] == "A"
    assert document["estate"] == sum(1 for i in range(24) if supplier_of(i) == "A")
    assert sum(document["categories"].values()) == document["estate"]
    result = runner.invoke(cli, ["report", "emrr", "--store", world.url, "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["scope", "metric", "date", "value"]
    scopes = {row[0] for row in rows[1:]}
    assert scopes == {"overall", "A", "B"}
    estate = {row[0]: int(row[3]) for row in rows[1:] if row[1] == "estate"}
    assert estate["overall"] == 24 == estate["A"] + estate["B"]
    bad = runner.invoke(cli, ["report", "emrr", "--store", world.url, "--format", "xml"])
    assert bad.exit_code == 2
