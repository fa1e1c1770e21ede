"""Refusals change nothing: replayed or reordered RequestIDs, bad signatures, failed checks."""

from __future__ import annotations

from datetime import UTC, datetime

from openecos.device import SUPPLIER_DS_CELL
from openecos.service import ManualClock
from openecos.smki.sandbox import ECOS_PARTY, SUPPLIER_A, SUPPLIER_B, TCOS_PARTY
from openecos.store import NotFound, Store
from tests.service.env import (
    TCOS_METER,
    Environment,
    post,
    request_id,
    response_code,
    running_server,
    runtime_for,
    signed_6_23,
    status_of,
    wait_until,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


def _recorded(store: Store, rid: str) -> bool:
    try:
        store.requests.get(rid)
    except NotFound:
        return False
    return True


def test_replayed_and_reordered_request_ids_are_refused_and_not_recorded(
    env: Environment,
) -> None:
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    with running_server(runtime) as client:
        first = signed_6_23(TCOS_METER, 5)
        assert post(client, first) == "I99"
        assert post(client, first) == "E42"  # the same bytes again: a replay
        assert post(client, signed_6_23(TCOS_METER, 3)) == "E42"  # an older counter: reordered
        assert runtime.store.requests.last_counter(SUPPLIER_B) == 5
        assert not _recorded(runtime.store, request_id(SUPPLIER_B, TCOS_METER, 3))
        refused = [e for e in runtime.store.audit.entries() if e.action == "request.refused"]
        assert [e.details["response_code"] for e in refused] == ["E42", "E42"]
        assert post(client, signed_6_23(TCOS_METER, 6)) == "I99"  # the sequence goes on
    runtime.close()


def test_a_tampered_request_gets_an_error_acknowledgement(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    with running_server(runtime) as client:
        tampered = signed_6_23(TCOS_METER, 9).replace(b"1000000000001", b"1000000000002")
        answer = client.post("/duis", content=tampered, headers={"content-type": "text/xml"})
        assert answer.status_code == 200
        assert response_code(answer.content) == "E41"  # digest mismatch
        assert runtime.store.requests.last_counter(SUPPLIER_B) is None
        assert not _recorded(runtime.store, request_id(SUPPLIER_B, TCOS_METER, 9))
    runtime.close()


def test_a_failed_check_changes_nothing_but_the_request_and_its_answer(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW))
    store = runtime.store
    cells_before = store.devices.trust_anchors(TCOS_METER)
    meter_before = runtime.estate.state(TCOS_METER)
    with running_server(runtime) as client:
        # Supplier A is no longer the registered supplier (B is, since the switch date).
        body = signed_6_23(TCOS_METER, 1, supplier="supplier-a", originator=SUPPLIER_A)
        assert post(client, body) == "I99"
        rid = request_id(SUPPLIER_A, TCOS_METER, 1)
        wait_until(lambda: status_of(client, rid) == "Rejected")
        assert store.requests.get(rid).response_code == "E4"
        answers = client.get(f"/users/{SUPPLIER_A.hex}/messages").json()
        assert [response_code(m["body"]) for m in answers] == ["E4"]
        # Nothing else moved: no counter reserved, no command, inventory and meter unchanged.
        assert store.signing_counters.last(TCOS_PARTY) is None
        assert store.signing_counters.last(ECOS_PARTY) is None
        assert store.commands.for_request(rid) == []
        assert store.devices.trust_anchors(TCOS_METER) == cells_before
        meter_after = runtime.estate.state(TCOS_METER)
        assert meter_before is not None and meter_after is not None
        assert meter_after.seq_numbers == meter_before.seq_numbers
        assert meter_after.cell(SUPPLIER_DS_CELL) is meter_before.cell(SUPPLIER_DS_CELL)
    runtime.close()
