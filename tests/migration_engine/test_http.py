"""The migration's HTTP routes: regimes, run control, meters and operator actions, EMRR."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from openecos.migration import LIVE_SERVICE_CRITERIA, ApprovedModel, ApprovedModels
from openecos.network import MeterFaults
from openecos.service import ManualClock, ServiceRuntime
from openecos.service.migration_delivery import EstateDelivery, FaultPlan
from openecos.service.migration_desk import MigrationDesk
from openecos.service.migration_engine import EngineConfig, MigrationEngine
from openecos.store import CosCredentialState
from tests.service.env import (
    ECOS_METER,
    SPARE_METERS,
    TCOS_METER,
    Environment,
    make_environment,
    running_server,
    runtime_for,
    wait_until,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> Iterator[tuple[httpx.Client, ServiceRuntime]]:
    meters = {TCOS_METER: CosCredentialState.TCOS, ECOS_METER: CosCredentialState.ECOS}
    meters.update({m: CosCredentialState.TCOS for m in SPARE_METERS[:4]})
    env: Environment = make_environment(tmp_path, db_url, meters)
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    with running_server(runtime) as http:
        yield http, runtime
    runtime.close()


@pytest.fixture
def client(service: tuple[httpx.Client, ServiceRuntime]) -> httpx.Client:
    return service[0]


def test_a_regime_change_needs_its_approvals_and_readiness_over_http(
    client: httpx.Client,
) -> None:
    assert client.get("/api/regime").json()["regime"] == "migration"
    for who in ("alice", "bob"):
        answer = client.post(
            "/api/regime/approvals", json={"event": "back-out", "approver": who, "reason": "x"}
        )
        assert answer.status_code == 200, answer.text
    answer = client.post("/api/regime/changes", json={"event": "back-out", "requested_by": "alice"})
    assert answer.json() == {"from": "migration", "to": "pre-go-live"}
    client.post("/api/regime/approvals", json={"event": "go-live", "approver": "a", "reason": "y"})
    client.post("/api/regime/approvals", json={"event": "go-live", "approver": "b", "reason": "y"})
    refused = client.post("/api/regime/changes", json={"event": "go-live", "requested_by": "a"})
    assert refused.status_code == 409 and "readiness" in refused.json()["detail"]
    readiness = {
        "assessed_at": NOW.isoformat(),
        "results": [
            {"criterion": c.name, "met": True, "evidence": ["letter-10-may-2022"]}
            for c in LIVE_SERVICE_CRITERIA
        ],
    }
    answer = client.post(
        "/api/regime/changes",
        json={"event": "go-live", "requested_by": "a", "readiness": readiness},
    )
    assert answer.json() == {"from": "pre-go-live", "to": "migration"}
    view = client.get("/api/regime").json()
    assert [h["event"] for h in view["history"]] == ["back-out", "go-live"]
    assert view["history"][1]["readiness"]["results"][0]["evidence"] == ["letter-10-may-2022"]
    assert (
        client.post("/api/regime/changes", json={"event": "nope", "requested_by": "a"}).status_code
        == 422
    )


def test_run_control_meters_and_emrr_over_http(client: httpx.Client) -> None:
    answer = client.post("/api/migration/run", json={"event": "start", "actor": "ops"})
    assert answer.json() == {"run": "running", "changed_by": "ops"}
    again = client.post("/api/migration/run", json={"event": "start", "actor": "ops"})
    assert again.status_code == 409
    status = client.get("/api/migration").json()
    assert status["run"] == "running" and status["regime"] == "migration"
    assert client.get(f"/api/migration/meters/{TCOS_METER.hex}").status_code == 404
    assert client.get("/api/migration/meters/not-an-eui").status_code == 422
    assert client.get("/api/migration/exceptions").json() == []
    overall = client.get("/api/emrr").json()
    assert overall[0]["scope"] == "overall"
    text = client.get("/api/emrr", params={"format": "csv"}).text
    assert next(csv.reader(io.StringIO(text))) == ["scope", "metric", "date", "value"]
    assert client.get("/api/emrr", params={"format": "xml"}).status_code == 422


def test_an_exception_is_seen_and_acted_on_over_http(
    service: tuple[httpx.Client, ServiceRuntime],
) -> None:
    client, runtime = service
    client.post("/api/migration/run", json={"event": "start", "actor": "ops"}).raise_for_status()
    MigrationDesk(runtime.store, runtime.clock).update_settings(
        lambda s: replace(
            s,
            approved=ApprovedModels((ApprovedModel("OPENECOS", "SIM-1"),)),
            policy=replace(s.policy, backoff_scale=1e-6, response_timeout=1.0, read_delay=1.0),
        ),
        actor="test",
        what="setup",
    )
    busy = FaultPlan(MeterFaults(busy=1.0), devices=frozenset({TCOS_METER}))
    engine = MigrationEngine(
        runtime.store,
        runtime.identities,
        runtime.clock,
        EstateDelivery(runtime.estate, runtime.clock, busy),
        worker_id="http-test",
        config=EngineConfig(plan=busy),
    )
    wait_until(
        lambda: (engine.step() or True) and bool(client.get("/api/migration/exceptions").json())
    )
    [view] = client.get("/api/migration/exceptions").json()
    assert view["device"] == TCOS_METER.hex and view["error"] == "METER_BUSY"
    assert view["next_action"].startswith("an operator decides")
    path = f"/api/migration/meters/{TCOS_METER.hex}/actions"
    held = client.post(path, json={"action": "hold", "actor": "ops", "note": "call the supplier"})
    assert held.status_code == 200 and held.json()["status"] == "held"
    again = client.post(path, json={"action": "retry", "actor": "ops", "note": "x"})
    assert again.status_code == 409
    unknown = client.post(path, json={"action": "explode", "actor": "ops", "note": "x"})
    assert unknown.status_code == 422
    meter = client.get(f"/api/migration/meters/{TCOS_METER.hex}").json()
    assert (meter["status"], meter["actor"], meter["note"]) == ("held", "ops", "call the supplier")
    one = client.get("/api/emrr", params={"supplier": "B"}).json()
    assert one["scope"] == "B" and one["categories"]["exception"] == 1  # B is registered now


@pytest.mark.postgres
def test_emrr_over_http_reads_the_counters_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    from sqlalchemy import insert

    from openecos.store import schema

    meters = {m: CosCredentialState.TCOS for m in SPARE_METERS[:3]}
    env: Environment = make_environment(tmp_path, pg_url, meters)
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    try:
        with running_server(runtime) as http:
            before = http.get("/api/emrr").json()[0]
            with runtime.store.engine.begin() as conn:  # a delta no meter change made
                conn.execute(
                    insert(schema.emrr_counts).values(
                        supplier=None, status="ELIGIBLE", ineligible=None, migrated_on=None, n=4
                    )
                )
            after = http.get("/api/emrr").json()[0]
            assert after["estate"] == before["estate"] + 4  # a recount would not see it
    finally:
        runtime.close()
