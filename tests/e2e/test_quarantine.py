"""Threshold Anomaly Detection end to end: quarantine, the DCC alert, an operator's release.

The thresholds come in through ``ServiceConfig.worker.tad`` (per user and
DCC-wide). A request over a threshold is Quarantined, its user gets a signed
``QuarantinedRequest`` DCC alert, and nothing reaches the meter; an operator
releases it with ``POST /api/quarantine/{request_id}/release`` and it then
completes, counted once.
"""

from __future__ import annotations

from datetime import timedelta

from openecos.cos import TadConfig, TadState
from openecos.device import SUPPLIER_DS_CELL
from openecos.service import ManualClock, WorkerSettings
from openecos.smki.sandbox import SUPPLIER_A, SUPPLIER_B
from tests.e2e.world import NOW, Snapshot, build_request, next_counter
from tests.service.env import (
    ECOS_METER,
    TCOS_METER,
    Environment,
    element_text,
    post,
    request_id,
    response_code,
    running_server,
    runtime_for,
    status_of,
    wait_until,
)

_ALERT = "sr:Body/sr:DCCAlertMessage/sr:DCCAlert/sr:QuarantinedRequest"


def _settings(tad: TadConfig) -> WorkerSettings:
    return WorkerSettings(
        lease=timedelta(seconds=2), response_timeout=timedelta(seconds=3), tad=tad
    )


def _tad_state(runtime) -> TadState:  # type: ignore[no-untyped-def]
    text = runtime.store.service_state.lock("tad")
    assert text is not None
    return TadState.from_json(text)


def _b_count(state: TadState) -> int:
    return sum(count for _, count in state.user_buckets(SUPPLIER_B))


def test_over_the_user_threshold_is_held_alerted_and_completes_once_released(
    env: Environment,
) -> None:
    tad = TadConfig(
        default_user_threshold=100, dcc_threshold=100, user_thresholds=((SUPPLIER_B, 1),)
    )
    runtime = runtime_for(env, ManualClock(NOW), worker=_settings(tad))
    with running_server(runtime) as client:
        first = next_counter()
        assert post(client, build_request(TCOS_METER, first)) == "I99"
        wait_until(
            lambda: status_of(client, request_id(SUPPLIER_B, TCOS_METER, first)) == "Completed"
        )
        client.get(f"/users/{SUPPLIER_B.hex}/messages")

        before = Snapshot.take(runtime, ECOS_METER)
        held = next_counter()
        rid = request_id(SUPPLIER_B, ECOS_METER, held)
        assert post(client, build_request(ECOS_METER, held)) == "I99"
        wait_until(lambda: status_of(client, rid) == "Quarantined")

        # The user's alert: signed, naming the breach, the request and the event reference.
        messages = client.get(f"/users/{SUPPLIER_B.hex}/messages").json()
        assert [m["kind"] for m in messages] == ["Alert"]
        body = messages[0]["body"]
        assert element_text(body, "sr:Body/sr:DCCAlertMessage/sr:DCCAlertCode") == "AD1"
        assert element_text(body, f"{_ALERT}/sr:ADUserThresholdBreach/sr:RequestID") == rid
        ref = element_text(body, f"{_ALERT}/sr:ADUserThresholdBreach/sr:QuarantineEventRef")
        assert ref is not None
        assert [
            (h["request_id"], str(h["quarantine_event_ref"]), h["breach"])
            for h in client.get("/api/quarantine").json()
        ] == [(rid, ref, "ADUserThresholdBreach")]

        # Nothing went to the meter; the held request is not counted.
        assert Snapshot.take(runtime, ECOS_METER) == before
        assert client.get(f"/api/requests/{rid}").json()["commands"] == []
        assert _b_count(_tad_state(runtime)) == 1

        released = client.post(f"/api/quarantine/{rid}/release")
        assert released.status_code == 200, released.text
        assert released.json()["status"] in ("Queued", "CommandSent", "Completed")
        wait_until(lambda: status_of(client, rid) == "Completed")
        meter = runtime.estate.state(ECOS_METER)
        assert meter is not None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_B
        assert len(client.get(f"/api/requests/{rid}").json()["commands"]) == 1

        # Counted once, by the release; a second release is refused and counts nothing.
        assert _b_count(_tad_state(runtime)) == 2
        again = client.post(f"/api/quarantine/{rid}/release")
        assert again.status_code == 409
        assert _b_count(_tad_state(runtime)) == 2
        assert client.get("/api/quarantine").json() == []
        assert client.post("/api/quarantine/nope/release").status_code == 404
        actions = [e["action"] for e in client.get("/api/audit", params={"subject": rid}).json()]
        assert actions[:4] == [
            "request.acknowledged",
            "request.quarantined",
            "request.released",
            "command.prepared",
        ]
        document = client.get("/openapi.json").json()
        assert "/api/quarantine/{request_id}/release" in document["paths"]
    runtime.close()


def test_over_the_dcc_threshold_is_held_with_a_dcc_breach(env: Environment) -> None:
    tad = TadConfig(default_user_threshold=100, dcc_threshold=1)
    runtime = runtime_for(env, ManualClock(NOW), worker=_settings(tad))
    with running_server(runtime) as client:
        first = next_counter()
        assert post(client, build_request(TCOS_METER, first)) == "I99"
        wait_until(
            lambda: status_of(client, request_id(SUPPLIER_B, TCOS_METER, first)) == "Completed"
        )
        client.get(f"/users/{SUPPLIER_B.hex}/messages")
        counter = next_counter()
        rid = request_id(SUPPLIER_B, ECOS_METER, counter)
        assert post(client, build_request(ECOS_METER, counter)) == "I99"
        wait_until(lambda: status_of(client, rid) == "Quarantined")
        body = client.get(f"/users/{SUPPLIER_B.hex}/messages").json()[0]["body"]
        assert element_text(body, f"{_ALERT}/sr:ADDCCThresholdBreach/sr:RequestID") == rid
        assert client.get(f"/api/requests/{rid}").json()["commands"] == []
        # A request that fails a check is rejected before TAD and never counted.
        refused = next_counter()
        body_a = build_request(
            ECOS_METER, refused, signer="supplier-a-xml-sign", originator=SUPPLIER_A
        )
        assert post(client, body_a) == "I99"
        rid_a = request_id(SUPPLIER_A, ECOS_METER, refused)
        wait_until(lambda: status_of(client, rid_a) == "Rejected")
        answers = client.get(f"/users/{SUPPLIER_A.hex}/messages").json()
        assert [response_code(m["body"]) for m in answers if m["request_id"] == rid_a] == ["E4"]
        assert sum(c for _, c in _tad_state(runtime).dcc) == 1
    runtime.close()
