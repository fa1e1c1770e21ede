"""The HTTP interface: OpenAPI published, transport errors, consume-once messages, JSON views."""

from __future__ import annotations

from datetime import UTC, datetime

from openecos.duis import DEFAULT_MAX_SIZE
from openecos.service import ManualClock
from openecos.smki.sandbox import SUPPLIER_B
from tests.service.env import (
    TCOS_METER,
    Environment,
    post,
    request_id,
    running_server,
    runtime_for,
    signed_6_23,
    status_of,
    wait_until,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


def test_openapi_document_describes_every_route(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    with running_server(runtime) as client:
        document = client.get("/openapi.json").json()
        paths = document["paths"]
        assert set(paths) >= {
            "/duis",
            "/users/{user_id}/messages",
            "/api/requests/{request_id}",
            "/api/devices/{eui}",
            "/api/audit",
            "/health",
        }
        for path, operations in paths.items():
            for method, operation in operations.items():
                assert operation.get("summary"), f"{method} {path} has no summary"
                assert operation.get("description"), f"{method} {path} has no description"
                assert "200" in operation["responses"], f"{method} {path}"
    runtime.close()


def test_not_xml_and_oversize_bodies_get_http_errors(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    with running_server(runtime) as client:
        assert client.post("/duis", content=b'{"a": 1}').status_code == 415
        typed = client.post("/duis", content=b"<x/>", headers={"content-type": "application/json"})
        assert typed.status_code == 415
        big = b"<a>" + b"x" * DEFAULT_MAX_SIZE + b"</a>"
        assert client.post("/duis", content=big).status_code == 413
        # Well-formed XML that is not a valid request is answered in DUIS, with HTTP 200.
        assert post(client, b"<a/>") != "I99"
        assert runtime.store.audit.entries()[-1].action == "request.refused"
    runtime.close()


def test_messages_are_consumed_once_and_views_follow_the_request(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW))
    with running_server(runtime) as client:
        assert post(client, signed_6_23(TCOS_METER, 1)) == "I99"
        rid = request_id(SUPPLIER_B, TCOS_METER, 1)
        wait_until(lambda: status_of(client, rid) == "Completed")
        first = client.get(f"/users/{SUPPLIER_B.hex}/messages", params={"limit": 1}).json()
        rest = client.get(f"/users/{SUPPLIER_B.hex}/messages").json()
        again = client.get(f"/users/{SUPPLIER_B.hex}/messages").json()
        assert len(first) == 1 and len(rest) >= 1 and again == []
        ids = [m["message_id"] for m in first + rest]
        assert ids == sorted(ids)  # oldest first
        device = client.get(f"/api/devices/{TCOS_METER.hex}").json()
        assert device["credential_state"] == "TCOS" and device["in_flight_command"] is None
        assert device["region"] is None  # not given in this inventory
        audit = client.get("/api/audit", params={"subject": rid}).json()
        assert [e["action"] for e in audit][:2] == ["request.acknowledged", "command.prepared"]
        assert client.get("/api/requests/nope").status_code == 404
        assert client.get("/api/devices/not-an-eui").status_code == 422
        assert client.get("/api/devices/0000000000000009").status_code == 404
    runtime.close()
