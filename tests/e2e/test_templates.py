"""DCC's published 6.23 templates through the whole flow, over HTTP.

reference/duis/templates/CS02bSupplierByTransCoS_6.23_{IMMEDIATE,FUTURE_DATED,
CANCELLATION}_SUCCESS_REQUEST_DUIS.XML carry placeholder signatures and the
ZAZ1 test parties. Each is read as published, keeps its XML structure and its
own values (CommandVariant, floor seq numbers, ApplyTimeBasedCPVChecks,
ExecutionDateTime: 2030-01-02 and the 3000-12-31 cancellation sentinel), and
only what the sandbox must supply is substituted: the RequestID, ImportMPxN,
the replacement certificates (supplier B's) and the certification path (the
sandbox organisation CA). It is then re-signed with supplier B's XML-signing
key and posted.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from lxml import etree

from openecos.device import SUPPLIER_DS_CELL, SUPPLIER_KA_CELL
from openecos.duis import RequestId
from openecos.eui import Eui64
from openecos.service import ManualClock
from openecos.smki.sandbox import SUPPLIER_A, SUPPLIER_B
from tests.e2e.world import NOW, next_counter, resign
from tests.reference import reference_path
from tests.service.env import (
    ECOS_METER,
    MPXN,
    TCOS_METER,
    Environment,
    element_text,
    pki,
    post,
    running_server,
    runtime_for,
    status_of,
    wait_until,
)

SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
COS = f"{SR}Body/{SR}UpdateSecurityCredentialsCoS"
TEMPLATE = "CS02bSupplierByTransCoS_6.23_{}_SUCCESS_REQUEST_DUIS.XML"
TEMPLATE_EXECUTION = datetime(2030, 1, 2, tzinfo=UTC)  # the FUTURE_DATED template's


def _template(kind: str) -> etree._Element:
    path = reference_path("duis", "templates", TEMPLATE.format(kind))
    return etree.fromstring(path.read_bytes(), etree.XMLParser(remove_blank_text=True))


def _structure(root: etree._Element) -> list[str]:
    """Element names in document order, outside the signature."""
    return [str(e.tag) for e in root.iter(etree.Element) if not str(e.tag).startswith(DS)]


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def from_template(kind: str, meter: Eui64, counter: int) -> tuple[bytes, str]:
    """The template made the sandbox's, re-signed by supplier B; and its RequestID."""
    root = _template(kind)
    shape = _structure(root)
    rid = RequestId(SUPPLIER_B, meter, counter).duis
    the_pki = pki()
    body = root.find(COS)
    assert body is not None
    substitutions = {
        f"{SR}Header/{SR}RequestID": rid,
        f"{COS}/{SR}ImportMPxN": MPXN[meter],
    }
    for name, entry in (
        ("DigitalSigningCertificate", "supplier-b-ds"),
        ("KeyAgreementCertificate", "supplier-b-ka"),
        ("KeyAgreementTopUpCertificate", "supplier-b-ka-topup"),
    ):
        path = f"{COS}/{SR}SupplierReplacementCertificates/{SR}{name}"
        substitutions[path] = _b64(the_pki.entry(entry).certificate.der)
    for path, value in substitutions.items():
        element = root.find(path)
        assert element is not None, path
        element.text = value
    (certificate,) = body.findall(f"{SR}CertificationPathCertificates/{SR}Certificate")
    certificate.text = _b64(the_pki.organisation_ca.certificate.der)
    assert _structure(root) == shape
    signed = resign(etree.tostring(root))
    assert _structure(etree.fromstring(signed)) == shape
    return signed, rid


def _messages(client, user: Eui64) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return list(client.get(f"/users/{user.hex}/messages").json())


def test_immediate_template_switches_the_meter(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW))
    with running_server(runtime) as client:
        signed, rid = from_template("IMMEDIATE", TCOS_METER, next_counter())
        assert post(client, signed) == "I99"
        wait_until(lambda: status_of(client, rid) == "Completed")
        meter = runtime.estate.state(TCOS_METER)
        assert meter is not None
        assert meter.cell(SUPPLIER_DS_CELL).der == pki().entry("supplier-b-ds").certificate.der
        assert meter.cell(SUPPLIER_KA_CELL).der == pki().entry("supplier-b-ka").certificate.der
        responses = [m for m in _messages(client, SUPPLIER_B) if m["kind"] == "Response"]
        assert [element_text(str(m["body"]), "sr:Header/sr:ResponseCode") for m in responses] == [
            "I0"
        ]
    runtime.close()


def test_future_dated_template_alerts_when_its_date_comes(env: Environment) -> None:
    clock = ManualClock(NOW)
    runtime = runtime_for(env, clock)
    with running_server(runtime) as client:
        signed, rid = from_template("FUTURE_DATED", TCOS_METER, next_counter())
        assert post(client, signed) == "I99"
        wait_until(lambda: status_of(client, rid) == "FutureDatedPending")
        view = client.get(f"/api/requests/{rid}").json()
        assert datetime.fromisoformat(view["execution_at"]) == TEMPLATE_EXECUTION
        meter = runtime.estate.state(TCOS_METER)
        assert meter is not None and meter.pending is not None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_A
        _messages(client, SUPPLIER_B)  # commandAccepted

        clock.advance(TEMPLATE_EXECUTION - NOW + timedelta(minutes=1))
        wait_until(lambda: status_of(client, rid) == "Completed")
        codes = [
            element_text(
                str(m["body"]),
                "sr:Body/sr:ResponseMessage/sr:FutureDatedDeviceAlertMessage/sr:FutureDatedAlertCode",
            )
            for m in _messages(client, SUPPLIER_B)
        ]
        assert "8F66" in codes
        meter = runtime.estate.state(TCOS_METER)
        assert meter is not None and meter.pending is None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_B
    runtime.close()


def test_cancellation_template_cancels_the_future_dated_template(env: Environment) -> None:
    clock = ManualClock(NOW)
    runtime = runtime_for(env, clock)
    with running_server(runtime) as client:
        pending, pending_rid = from_template("FUTURE_DATED", ECOS_METER, next_counter())
        assert post(client, pending) == "I99"
        wait_until(lambda: status_of(client, pending_rid) == "FutureDatedPending")
        cancel, cancel_rid = from_template("CANCELLATION", ECOS_METER, next_counter())
        assert post(client, cancel) == "I99"
        wait_until(lambda: status_of(client, cancel_rid) == "Completed")
        assert status_of(client, pending_rid) == "Cancelled"
        meter = runtime.estate.state(ECOS_METER)
        assert meter is not None and meter.pending is None
        clock.advance(TEMPLATE_EXECUTION - NOW + timedelta(days=1))
        assert runtime.estate.advance_due(clock.now()) == 0
        meter = runtime.estate.state(ECOS_METER)
        assert meter is not None
        assert meter.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_A
    runtime.close()
