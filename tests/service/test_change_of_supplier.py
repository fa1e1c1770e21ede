"""A change of supplier end to end, over real HTTP: TCoS and ECoS meters, future-dated, cancelled.

Each test runs the service (API and workers) in this process on 127.0.0.1
with an ephemeral port, on SQLite and on PostgreSQL; the meters are the
persistent simulated estate. The DUIS XSD is reference/duis/xsd.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openecos.device import SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, TRANSITIONAL_COS_CELL
from openecos.duis import CANCELLATION_SENTINEL
from openecos.eui import Eui64
from openecos.gbcs import decode_frame, decode_payload
from openecos.gbcs.cs02b import UpdateSecurityCredentialsAlert, UpdateSecurityCredentialsResponse
from openecos.service import ManualClock
from openecos.smki.sandbox import ECOS_PARTY, SUPPLIER_A, SUPPLIER_B, TCOS_PARTY
from tests.service.env import (
    ECOS_METER,
    TCOS_METER,
    Environment,
    element_text,
    gbcs_payload,
    pki,
    post,
    request_id,
    running_server,
    runtime_for,
    signed_6_23,
    status_of,
    wait_until,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


def _messages(client, user: Eui64) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    answer = client.get(f"/users/{user.hex}/messages")
    assert answer.status_code == 200
    return list(answer.json())


@pytest.mark.parametrize(
    ("meter", "party"), [(TCOS_METER, TCOS_PARTY), (ECOS_METER, ECOS_PARTY)], ids=["tcos", "ecos"]
)
def test_switch_from_a_to_b_installs_b_and_tells_both(
    env: Environment, meter: Eui64, party: Eui64
) -> None:
    runtime = runtime_for(env, ManualClock(NOW))
    with running_server(runtime) as client:
        assert post(client, signed_6_23(meter, 1)) == "I99"
        rid = request_id(SUPPLIER_B, meter, 1)
        wait_until(lambda: status_of(client, rid) == "Completed")

        view = client.get(f"/api/requests/{rid}").json()
        assert view["response_code"] == "I0"
        # Routed by the meter's credential state: the command's originator is its CoS Party.
        assert [c["signer"] for c in view["commands"]] == [party.hex]
        assert view["cos_party"] == party.hex

        # The simulated meter now holds B's certificates, and the inventory says so.
        state = runtime.estate.state(meter)
        assert state is not None
        the_pki = pki()
        assert state.cell(SUPPLIER_DS_CELL).der == the_pki.entry("supplier-b-ds").certificate.der
        assert state.cell(SUPPLIER_KA_CELL).der == the_pki.entry("supplier-b-ka").certificate.der
        cells = client.get(f"/api/devices/{meter.hex}").json()["cells"]
        supplier = {c["subject_eui"] for c in cells if c["role"] == "SUPPLIER"}
        assert supplier == {SUPPLIER_B.hex}

        # B: I0 with the meter's response carrying the ExecutionOutcome.
        to_b = _messages(client, SUPPLIER_B)
        responses = [m for m in to_b if m["kind"] == "Response"]
        assert len(responses) == 1
        body = str(responses[0]["body"])
        assert element_text(body, "sr:Header/sr:ResponseCode") == "I0"
        content = decode_payload(decode_frame(gbcs_payload(body)))
        assert isinstance(content, UpdateSecurityCredentialsResponse)
        assert content.execution_outcome is not None
        assert content.execution_outcome.authorising_remote_party_seq_number == int(
            view["commands"][0]["originator_counter"]
        )

        # A: the ChangeOfSupplier DCC alert naming B's request.
        to_a = _messages(client, SUPPLIER_A)
        assert [
            element_text(
                str(m["body"]),
                "sr:Body/sr:DCCAlertMessage/sr:DCCAlert/sr:ChangeOfSupplier/"
                "sr:ChangeOfSupplierServiceRequestID",
            )
            for m in to_a
        ] == [rid]
        # Read once: the messages are consumed.
        assert _messages(client, SUPPLIER_B) == []
    runtime.close()


def test_future_dated_switch_executes_when_due_and_alerts(env: Environment) -> None:
    clock = ManualClock(NOW)
    runtime = runtime_for(env, clock)
    with running_server(runtime) as client:
        when = NOW + timedelta(hours=1)
        assert post(client, signed_6_23(TCOS_METER, 7, execution=when)) == "I99"
        rid = request_id(SUPPLIER_B, TCOS_METER, 7)
        wait_until(lambda: status_of(client, rid) == "FutureDatedPending")
        accepted = _messages(client, SUPPLIER_B)
        assert len(accepted) == 1
        content = decode_payload(decode_frame(gbcs_payload(str(accepted[0]["body"]))))
        assert isinstance(content, UpdateSecurityCredentialsResponse)
        assert content.execution_outcome is None  # commandAccepted alone
        meter = runtime.estate.state(TCOS_METER)
        assert meter is not None and meter.pending is not None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_A

        clock.advance(timedelta(hours=2))
        wait_until(lambda: status_of(client, rid) == "Completed")
        alerts = _messages(client, SUPPLIER_B)
        device_alerts = [
            m
            for m in alerts
            if element_text(
                str(m["body"]),
                "sr:Body/sr:ResponseMessage/sr:FutureDatedDeviceAlertMessage/sr:FutureDatedAlertCode",
            )
            == "8F66"
        ]
        assert len(device_alerts) == 1
        alert = decode_payload(decode_frame(gbcs_payload(str(device_alerts[0]["body"]))))
        assert isinstance(alert, UpdateSecurityCredentialsAlert)
        assert len(_messages(client, SUPPLIER_A)) == 1  # ChangeOfSupplier
        meter = runtime.estate.state(TCOS_METER)
        assert meter is not None and meter.pending is None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_B
    runtime.close()


def test_cancellation_cancels_the_pending_switch(env: Environment) -> None:
    clock = ManualClock(NOW)
    runtime = runtime_for(env, clock)
    with running_server(runtime) as client:
        first = request_id(SUPPLIER_B, ECOS_METER, 10)
        assert post(client, signed_6_23(ECOS_METER, 10, execution=NOW + timedelta(days=1))) == "I99"
        wait_until(lambda: status_of(client, first) == "FutureDatedPending")
        cancel = request_id(SUPPLIER_B, ECOS_METER, 11)
        assert post(client, signed_6_23(ECOS_METER, 11, execution=CANCELLATION_SENTINEL)) == "I99"
        wait_until(lambda: status_of(client, cancel) == "Completed")
        assert status_of(client, first) == "Cancelled"
        meter = runtime.estate.state(ECOS_METER)
        assert meter is not None and meter.pending is None
        # Time passing changes nothing now: the meter still holds A's certificates.
        clock.advance(timedelta(days=2))
        assert runtime.estate.advance_due(clock.now()) == 0
        meter = runtime.estate.state(ECOS_METER)
        assert meter is not None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_A
        assert meter.cell(TRANSITIONAL_COS_CELL).subject_unique_id == ECOS_PARTY
        commands = client.get(f"/api/requests/{first}").json()["commands"]
        assert [c["status"] for c in commands] == ["Cancelled"]
    runtime.close()
