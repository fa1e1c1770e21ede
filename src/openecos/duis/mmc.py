"""The MMC (``ra:``) shape of the 6.23 outcome: ``UpdateSecurityCredentialsCoSRsp``.

Theory of operation: DUIS relays the device's answer as base64 GBCS
(:func:`openecos.duis.response.build_service_response`); the Message
Mapping Catalogue (MMC Schema V5.4) defines how that GBCS decodes into XML,
an ``ra:GBCSResponse`` whose body for SR 6.23 is
``SMETSData/UpdateSecurityCredentialsCoSRsp`` holding an optional
``ExecutionOutcome`` (absent when the command was future-dated; the
outcome then arrives in the 0x8F66/0x8F67 alert as
``UpdateSecurityCredentialsDeviceAlert``). docs/ecos-domain.md §A5, §A6.

These builders take an :class:`ExecutionOutcomeReport` (the MMC's fields,
mapped by the caller from the GBCS ExecutionOutcome) and write that XML. The
MMC ``GBCSResponse`` element has no ``ds:Signature`` slot, so these documents
are unsigned by construction; they validate against the DUIS schema set
(which imports the MMC schema).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from openecos.duis.codes import SCHEMA_VERSION, SERVICE_REFERENCE_6_23
from openecos.duis.document import NS_RA
from openecos.duis.response import DUIS_REMOTE_PARTY_ROLE, CertificateType
from openecos.duis.xsdtypes import format_datetime
from openecos.eui import Eui64
from openecos.gbcs.codes import (
    AlertCode,
    CredentialsReplacementMode,
    MessageCode,
    RemotePartyRole,
    StatusCode,
)

_RA = f"{{{NS_RA}}}"

#: MMC ``ASN1Status`` spelling of the CS02b per-cell status codes.
MMC_STATUS: dict[StatusCode, str] = {
    StatusCode.SUCCESS: "success",
    StatusCode.BAD_CERTIFICATE: "badCertificate",
    StatusCode.NO_TRUST_ANCHOR: "noTrustAnchor",
    StatusCode.INSUFFICIENT_MEMORY: "insufficientMemory",
    StatusCode.TRUST_ANCHOR_NOT_FOUND: "trustAnchorNotFound",
    StatusCode.RESOURCES_BUSY: "resourcesBusy",
    StatusCode.OTHER: "other",
}

#: MMC ``CredentialsReplacementMode`` spelling (the MMC lists only these modes).
MMC_REPLACEMENT_MODE: dict[CredentialsReplacementMode, str] = {
    CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER: "SupplierBySupplier",
    CredentialsReplacementMode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: (
        "NetworkOperatorByNetworkOperator"
    ),
    CredentialsReplacementMode.ACCESS_CONTROL_BROKER_BY_ACB: "ACBByACB",
    CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS: "SupplierByTransCoS",
}

_ALERT_DESCRIPTION = {
    AlertCode.FUTURE_DATED_COMMAND_ACTIONED: (
        "Future-date HAN Interface Command Successfully Actioned"
    ),
    AlertCode.FUTURE_DATED_COMMAND_NOT_ACTIONED: "Future-date HAN Interface Command Not Actioned",
}


@dataclass(frozen=True, slots=True)
class MmcHeader:
    """``ra:HeaderType``: the GBCS response's originator (device) and target (user)."""

    business_originator_id: Eui64
    business_target_id: Eui64
    originator_counter: int
    message_code: MessageCode = MessageCode.CS02B_SUPPLIER_BY_TRANS_COS
    service_reference: str = SERVICE_REFERENCE_6_23
    service_reference_variant: str = SERVICE_REFERENCE_6_23


@dataclass(frozen=True, slots=True)
class RemotePartySeqNumberChangeReport:
    remote_party_role: RemotePartyRole | None = None
    floor_seq_number: int | None = None
    prepayment_top_up_floor_seq_number: int | None = None


@dataclass(frozen=True, slots=True)
class ReplacementOutcomeReport:
    """``ra:ReplacementOutcome``: one trust-anchor cell's result (hashes are SHA-1)."""

    status: StatusCode
    certificate_type: CertificateType
    remote_party_role: RemotePartyRole
    existing_remote_party_id: Eui64 | None = None
    new_remote_party_id: Eui64 | None = None
    existing_certificate_hash: bytes | None = None
    new_certificate_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class ExecutionOutcomeReport:
    """``ra:ExecutionOutcome``."""

    authorising_remote_party_originator_counter: int | None
    credentials_replacement_mode: CredentialsReplacementMode | None
    seq_number_change: RemotePartySeqNumberChangeReport | None
    replacement_outcomes: tuple[ReplacementOutcomeReport, ...]  # 0..3


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{_RA}{name}")
    if text is not None:
        element.text = text
    return element


def _gbcs_response(header: MmcHeader) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{_RA}GBCSResponse", nsmap={"ra": NS_RA}, schemaVersion=SCHEMA_VERSION)
    h = _sub(root, "Header")
    _sub(h, "BusinessOriginatorID", header.business_originator_id.duis)
    _sub(h, "BusinessTargetID", header.business_target_id.duis)
    _sub(h, "OriginatorCounter", str(header.originator_counter))
    _sub(h, "GBCSHexadecimalMessageCode", f"{header.message_code.value:04X}")
    _sub(h, "ServiceReference", header.service_reference)
    _sub(h, "ServiceReferenceVariant", header.service_reference_variant)
    return root, _sub(root, "Body")


def _serialise(root: etree._Element) -> bytes:
    document: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document


def _write_outcome(parent: etree._Element, name: str, outcome: ExecutionOutcomeReport) -> None:
    element = _sub(parent, name)
    if outcome.authorising_remote_party_originator_counter is not None:
        _sub(
            element,
            "AuthorisingRemotePartyOriginatorCounter",
            str(outcome.authorising_remote_party_originator_counter),
        )
    if outcome.credentials_replacement_mode is not None:
        mode = MMC_REPLACEMENT_MODE.get(outcome.credentials_replacement_mode)
        if mode is None:
            raise ValueError(f"the MMC has no name for {outcome.credentials_replacement_mode!r}")
        _sub(element, "CredentialsReplacementMode", mode)
    change = outcome.seq_number_change
    if change is not None:
        c = _sub(element, "RemotePartySeqNumberChange")
        if change.remote_party_role is not None:
            _sub(c, "RemotePartyRole", DUIS_REMOTE_PARTY_ROLE[change.remote_party_role])
        if change.floor_seq_number is not None:
            _sub(c, "RemotePartyFloorSeqNumber", str(change.floor_seq_number))
        if change.prepayment_top_up_floor_seq_number is not None:
            _sub(
                c,
                "RemotePartyPrepaymentTopUpFloorSeqNumber",
                str(change.prepayment_top_up_floor_seq_number),
            )
    if len(outcome.replacement_outcomes) > 3:
        raise ValueError("an ExecutionOutcome holds at most 3 ReplacementOutcomes")
    for r in outcome.replacement_outcomes:
        o = _sub(element, "ReplacementOutcome")
        # StatusASN1: the ASN.1 enumeration value as ResponseCode, its name as ASN1Status.
        status = _sub(o, "StatusCode")
        status.set("ResponseCode", str(int(r.status)))
        _sub(status, "ASN1Status", MMC_STATUS[r.status])
        _sub(o, "CertificateType", r.certificate_type.value)
        _sub(o, "RemotePartyRole", DUIS_REMOTE_PARTY_ROLE[r.remote_party_role])
        if r.existing_remote_party_id is not None:
            _sub(o, "ExistingRemotePartyID", r.existing_remote_party_id.duis)
        if r.new_remote_party_id is not None:
            _sub(o, "NewRemotePartyID", r.new_remote_party_id.duis)
        for name, digest in (
            ("ExistingCertificateHash", r.existing_certificate_hash),
            ("NewCertificateHash", r.new_certificate_hash),
        ):
            if digest is not None:
                if len(digest) != 20:
                    raise ValueError(f"{name} is a 20-byte SHA-1")
                _sub(o, name, base64.b64encode(digest).decode("ascii"))


def build_update_security_credentials_cos_rsp(
    header: MmcHeader,
    outcome: ExecutionOutcomeReport | None,
    *,
    message_success: bool = True,
) -> bytes:
    """The MMC ``GBCSResponse`` for a 6.23 response (``outcome`` None when future-dated)."""
    root, body = _gbcs_response(header)
    smets = _sub(_sub(body, "ResponseMessage"), "SMETSData")
    rsp = _sub(smets, "UpdateSecurityCredentialsCoSRsp")
    rsp.set("MessageSuccess", "true" if message_success else "false")
    if outcome is not None:
        _write_outcome(rsp, "ExecutionOutcome", outcome)
    return _serialise(root)


def build_update_security_credentials_alert(
    header: MmcHeader,
    alert_code: AlertCode,
    timestamp: datetime,
    outcome: ExecutionOutcomeReport,
) -> bytes:
    """The MMC ``GBCSResponse`` for the 0x00CB future-dated outcome alert (8F66/8F67)."""
    root, body = _gbcs_response(header)
    content = _sub(_sub(body, "DeviceAlertMessage"), "DeviceAlertContent")
    code = AlertCode(alert_code)
    _sub(content, "GBCSHexAlertCode", f"{code.value:04X}")
    _sub(content, "AlertDescription", _ALERT_DESCRIPTION[code])
    _sub(content, "Timestamp", format_datetime(timestamp))
    payload = _sub(_sub(content, "Payload"), "FutureDatedCommandOutcomeDeviceAlert")
    alert = _sub(payload, "UpdateSecurityCredentialsDeviceAlert")
    _write_outcome(alert, "UpdateSecurityCredentialsExecutionOutcome", outcome)
    return _serialise(root)
