"""What the DCC emits validates against DUIS/MMC V5.4 and (for sr:Response) verifies."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from lxml import etree

from openecos.duis import DuisSchema, RequestId, ResponseCode, parse_document, verify_signature
from openecos.duis.codes import DccAlertCode
from openecos.duis.mmc import (
    ExecutionOutcomeReport,
    MmcHeader,
    RemotePartySeqNumberChangeReport,
    ReplacementOutcomeReport,
    build_update_security_credentials_alert,
    build_update_security_credentials_cos_rsp,
)
from openecos.duis.response import (
    CertificateType,
    ChangeOfSupplierAlert,
    DeviceChangeOfSupplierAlert,
    DeviceType,
    QuarantineBreach,
    QuarantinedRequestAlert,
    SecurityCredentialsUpdatedAlert,
    UpdatedCertificate,
    build_acknowledgement,
    build_dcc_alert,
    build_future_dated_device_alert,
    build_service_response,
)
from openecos.eui import Eui64
from openecos.gbcs.codes import AlertCode, CredentialsReplacementMode, RemotePartyRole, StatusCode
from tests.duis.conftest import SignerPki

SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
SUPPLIER = Eui64.parse("90B3D51F30010000")
SUPPLIER2 = Eui64.parse("90B3D51F30030000")
DEVICE = Eui64.parse("00DB1234567890A0")
REQUEST = RequestId(SUPPLIER2, DEVICE, 1007)
AT = dt.datetime(2026, 11, 22, 12, 0, 0, 123000, tzinfo=dt.UTC)
PAYLOAD = bytes(range(40))


def _check(data: bytes, schema: DuisSchema, pki: SignerPki) -> etree._Element:
    root = parse_document(data)
    schema.validate(root)
    verify_signature(root, pki.resolver)
    return root


@pytest.mark.parametrize("code", [ResponseCode.I99, ResponseCode.E40, ResponseCode.E062301])
def test_acknowledgement(code: ResponseCode, schema: DuisSchema, pki: SignerPki) -> None:
    root = _check(
        build_acknowledgement(request_id=REQUEST, response_code=code, at=AT, signer=pki.identity),
        schema,
        pki,
    )
    assert root.findtext(f"{SR}Header/{SR}ResponseCode") == code.value
    assert root.findtext(f"{SR}Header/{SR}RequestID") == REQUEST.duis
    assert root.findtext(f"{SR}Header/{SR}ResponseDateTime") == "2026-11-22T12:00:00.123Z"
    assert root.find(f"{SR}Body/{SR}ResponseMessage/{SR}GBCSPayload") is None


def test_acknowledgement_without_a_readable_request_id(schema: DuisSchema, pki: SignerPki) -> None:
    data = build_acknowledgement(
        request_id=None, response_code=ResponseCode.E40, at=AT, signer=pki.identity
    )
    assert _check(data, schema, pki).find(f"{SR}Header/{SR}RequestID") is None


def test_service_response_carries_the_gbcs_payload(schema: DuisSchema, pki: SignerPki) -> None:
    root = _check(
        build_service_response(
            request_id=REQUEST, gbcs_payload=PAYLOAD, at=AT, signer=pki.identity
        ),
        schema,
        pki,
    )
    assert root.findtext(f"{SR}Header/{SR}ResponseID") == REQUEST.response_id()
    payload = root.findtext(f"{SR}Body/{SR}ResponseMessage/{SR}GBCSPayload")
    assert base64.b64decode(payload) == PAYLOAD


@pytest.mark.parametrize("code", list(AlertCode))
def test_future_dated_device_alert(code: AlertCode, schema: DuisSchema, pki: SignerPki) -> None:
    root = _check(
        build_future_dated_device_alert(
            request_id=REQUEST, alert_code=code, gbcs_payload=PAYLOAD, at=AT, signer=pki.identity
        ),
        schema,
        pki,
    )
    alert = root.find(f"{SR}Body/{SR}ResponseMessage/{SR}FutureDatedDeviceAlertMessage")
    assert alert is not None
    assert alert.findtext(f"{SR}FutureDatedAlertCode") == f"{code.value:04X}"


SHA1 = hashlib.sha1(b"certificate").digest()
ALERTS = {
    "change-of-supplier": (DccAlertCode.N1, ChangeOfSupplierAlert(REQUEST), "ChangeOfSupplier"),
    "change-of-supplier-ecos-error": (
        DccAlertCode.N1,
        ChangeOfSupplierAlert(REQUEST, "E01"),
        "ChangeOfSupplier",
    ),
    "device-change-of-supplier": (
        DccAlertCode.N1,
        DeviceChangeOfSupplierAlert(DEVICE, DeviceType.ESME, "1312345678333"),
        "ChangeOfSupplier",
    ),
    "security-credentials-updated": (
        DccAlertCode.N1,
        SecurityCredentialsUpdatedAlert(
            DEVICE,
            RemotePartyRole.SUPPLIER,
            (
                UpdatedCertificate(CertificateType.DIGITAL_SIGNING, SHA1),
                UpdatedCertificate(CertificateType.KEY_AGREEMENT, SHA1),
                UpdatedCertificate(CertificateType.KEY_AGREEMENT_TOP_UP, SHA1),
            ),
            floor_seq_number=0,
            prepayment_top_up_floor_seq_number=0,
        ),
        "SecurityCredentialsUpdated",
    ),
    "quarantined-request": (
        DccAlertCode.AD1,
        QuarantinedRequestAlert(QuarantineBreach.USER_THRESHOLD, REQUEST, 10**19),
        "QuarantinedRequest",
    ),
}


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_dcc_alerts(name: str, schema: DuisSchema, pki: SignerPki) -> None:
    code, alert, element = ALERTS[name]
    root = _check(
        build_dcc_alert(alert_code=code, alert=alert, at=AT, signer=pki.identity), schema, pki
    )
    message = root.find(f"{SR}Body/{SR}DCCAlertMessage")
    assert message is not None
    assert message.findtext(f"{SR}DCCAlertCode") == code.value
    assert message.find(f"{SR}DCCAlert/{SR}{element}") is not None


def test_alert_values_outside_the_xsd_are_refused_when_building(pki: SignerPki) -> None:
    bad = [
        ChangeOfSupplierAlert(REQUEST, "TOOLONG"),
        SecurityCredentialsUpdatedAlert(DEVICE, RemotePartyRole.SUPPLIER, ()),
        SecurityCredentialsUpdatedAlert(
            DEVICE,
            RemotePartyRole.SUPPLIER,
            (UpdatedCertificate(CertificateType.DIGITAL_SIGNING, b"short"),),
        ),
    ]
    for alert in bad:
        with pytest.raises(ValueError):
            build_dcc_alert(alert_code=DccAlertCode.N1, alert=alert, at=AT, signer=pki.identity)


OUTCOME = ExecutionOutcomeReport(
    authorising_remote_party_originator_counter=0x1771,
    credentials_replacement_mode=CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS,
    seq_number_change=RemotePartySeqNumberChangeReport(RemotePartyRole.SUPPLIER, 0, 0),
    replacement_outcomes=tuple(
        ReplacementOutcomeReport(
            StatusCode.SUCCESS, kind, RemotePartyRole.SUPPLIER, SUPPLIER, SUPPLIER2, SHA1, SHA1
        )
        for kind in (
            CertificateType.DIGITAL_SIGNING,
            CertificateType.KEY_AGREEMENT,
            CertificateType.KEY_AGREEMENT_TOP_UP,
        )
    ),
)
HEADER = MmcHeader(DEVICE, SUPPLIER2, 0x1771)


@pytest.mark.parametrize("outcome", [OUTCOME, None], ids=["immediate", "future-dated"])
def test_mmc_update_security_credentials_cos_rsp(
    outcome: ExecutionOutcomeReport | None, schema: DuisSchema
) -> None:
    root = parse_document(build_update_security_credentials_cos_rsp(HEADER, outcome))
    schema.validate(root)
    ra = "{http://www.dccinterface.co.uk/ResponseAndAlert}"
    rsp = root.find(
        f"{ra}Body/{ra}ResponseMessage/{ra}SMETSData/{ra}UpdateSecurityCredentialsCoSRsp"
    )
    assert rsp is not None
    assert (rsp.find(f"{ra}ExecutionOutcome") is None) == (outcome is None)
    if outcome is not None:
        assert len(rsp.findall(f"{ra}ExecutionOutcome/{ra}ReplacementOutcome")) == 3
        assert rsp.findtext(f"{ra}ExecutionOutcome/{ra}CredentialsReplacementMode") == (
            "SupplierByTransCoS"
        )


@pytest.mark.parametrize("status", list(StatusCode))
def test_mmc_future_dated_outcome_alert(status: StatusCode, schema: DuisSchema) -> None:
    outcome = ExecutionOutcomeReport(
        0x1771,
        CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS,
        None,
        (
            ReplacementOutcomeReport(
                status, CertificateType.DIGITAL_SIGNING, RemotePartyRole.SUPPLIER
            ),
        ),
    )
    data = build_update_security_credentials_alert(
        HEADER, AlertCode.FUTURE_DATED_COMMAND_ACTIONED, AT, outcome
    )
    schema.validate(parse_document(data))


def test_mmc_refuses_a_mode_it_has_no_name_for() -> None:
    outcome = ExecutionOutcomeReport(1, CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS, None, ())
    with pytest.raises(ValueError):
        build_update_security_credentials_cos_rsp(HEADER, outcome)
