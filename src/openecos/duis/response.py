"""What the DCC sends back: acknowledgements, service responses and alerts (``sr:Response``).

Theory of operation: each builder takes typed values and a DCC
:class:`~openecos.duis.xmldsig.SigningIdentity` and returns the signed,
minified bytes of one ``sr:Response`` that validates against DUIS Schema V5.4
(docs/duis-xmldsig-smki.md §1.3). The element order is the XSD's sequence:
Header {RequestID?, ResponseID?, ResponseCode, ResponseDateTime}, then Body
with one of ResponseMessage / DCCAlertMessage, then ds:Signature.

- acknowledgement: ResponseMessage with ServiceReference and variant only
  (I99 when accepted, the error's code otherwise; DUIS V5.4 has no
  Acknowledgement element, §1.3);
- service response: ResponseMessage carrying the device's response as
  ``GBCSPayload`` (base64 of the GBCS bytes);
- future-dated device alert: ResponseMessage with FutureDatedDeviceAlertMessage
  (alert 0x8F66 / 0x8F67, the 0x00CB payload);
- DCC alerts: DCCAlertMessage {DCCAlertCode, DCCAlert} for ChangeOfSupplier,
  SecurityCredentialsUpdated and QuarantinedRequest. DUIS fixes which N-code
  goes with which alert; the XSD does not, so the caller passes it.

All times are written as UTC ``…Z`` with milliseconds, as DCC Boxed does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from openecos.duis.codes import (
    SCHEMA_VERSION,
    SERVICE_REFERENCE_6_23,
    DccAlertCode,
    ResponseCode,
)
from openecos.duis.document import NS_SR
from openecos.duis.request_id import RequestId
from openecos.duis.xmldsig import SigningIdentity, sign_document
from openecos.duis.xsdtypes import format_datetime
from openecos.eui import Eui64
from openecos.gbcs.codes import AlertCode, RemotePartyRole

_SR = f"{{{NS_SR}}}"

#: DUIS ``sr:RemotePartyRole`` spelling of the GBCS roles that DUIS names.
DUIS_REMOTE_PARTY_ROLE: dict[RemotePartyRole, str] = {
    RemotePartyRole.ACCESS_CONTROL_BROKER: "ACB",
    RemotePartyRole.NETWORK_OPERATOR: "NetworkOperator",
    RemotePartyRole.RECOVERY: "Recovery",
    RemotePartyRole.ROOT: "Root",
    RemotePartyRole.SUPPLIER: "Supplier",
    RemotePartyRole.TRANSITIONAL_COS: "TransCoS",
    RemotePartyRole.LOAD_CONTROLLER: "LoadController",
}


class CertificateType(StrEnum):
    """``CertificateType`` (MMC ReplacementOutcome; DUIS Certificates lacks KeyCertSign)."""

    DIGITAL_SIGNING = "DigitalSigning"
    KEY_AGREEMENT = "KeyAgreement"
    KEY_AGREEMENT_TOP_UP = "KeyAgreementTopUp"
    KEY_CERT_SIGN = "KeyCertSign"


class DeviceType(StrEnum):
    """``sr:DeviceType``."""

    ESME = "ESME"
    GSME = "GSME"
    GPF = "GPF"
    CHF = "CHF"
    HCALCS = "HCALCS"
    PPMID = "PPMID"
    IHD = "IHD"
    CAD = "CAD"


class QuarantineBreach(StrEnum):
    """The choice inside ``sr:QuarantinedRequest`` (Threshold Anomaly Detection)."""

    USER_THRESHOLD = "ADUserThresholdBreach"
    DCC_THRESHOLD = "ADDCCThresholdBreach"
    ATTRIBUTE_LIMITS = "ADAttributeLimitsBreach"


@dataclass(frozen=True, slots=True)
class ChangeOfSupplierAlert:
    """``sr:ChangeOfSupplier`` (request form): the 6.23 that moved the device, and
    the ECoS error code (exactly 3 characters) where the change failed."""

    change_of_supplier_request_id: RequestId
    ecos_error_code: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceChangeOfSupplierAlert:
    """``sr:ChangeOfSupplier`` (device form): which device, of which type, at which MPxNs."""

    device_id: Eui64
    device_type: DeviceType
    import_mpxn: str
    secondary_import_mpan: str | None = None
    export_mpan: str | None = None


@dataclass(frozen=True, slots=True)
class UpdatedCertificate:
    """One ``sr:Certificates`` entry: the type and the SHA-1 of the certificate."""

    certificate_type: CertificateType
    sha1: bytes


@dataclass(frozen=True, slots=True)
class SecurityCredentialsUpdatedAlert:
    """``sr:SecurityCredentialsUpdated``: the device's trust anchors for a role changed."""

    device_id: Eui64
    remote_party_role: RemotePartyRole
    certificates: tuple[UpdatedCertificate, ...]  # 1..3
    floor_seq_number: int | None = None
    prepayment_top_up_floor_seq_number: int | None = None


@dataclass(frozen=True, slots=True)
class QuarantinedRequestAlert:
    """``sr:QuarantinedRequest``: a request held by Threshold Anomaly Detection."""

    breach: QuarantineBreach
    request_id: RequestId
    quarantine_event_ref: int  # up to 20 digits


DccAlert = (
    ChangeOfSupplierAlert
    | DeviceChangeOfSupplierAlert
    | SecurityCredentialsUpdatedAlert
    | QuarantinedRequestAlert
)


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{_SR}{name}")
    if text is not None:
        element.text = text
    return element


def _response(
    *,
    request_id: RequestId | None,
    response_id: str | None,
    response_code: ResponseCode,
    at: datetime,
) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{_SR}Response", nsmap={"sr": NS_SR}, schemaVersion=SCHEMA_VERSION)
    header = _sub(root, "Header")
    if request_id is not None:
        _sub(header, "RequestID", request_id.duis)
    if response_id is not None:
        _sub(header, "ResponseID", response_id)
    _sub(header, "ResponseCode", response_code.value)
    _sub(header, "ResponseDateTime", format_datetime(at))
    return root, _sub(root, "Body")


def _response_message(
    body: etree._Element, service_reference: str, service_reference_variant: str
) -> etree._Element:
    message = _sub(body, "ResponseMessage")
    _sub(message, "ServiceReference", service_reference)
    _sub(message, "ServiceReferenceVariant", service_reference_variant)
    return message


def build_acknowledgement(
    *,
    request_id: RequestId | None,
    response_code: ResponseCode,
    at: datetime,
    signer: SigningIdentity,
    service_reference: str = SERVICE_REFERENCE_6_23,
    service_reference_variant: str = SERVICE_REFERENCE_6_23,
) -> bytes:
    """The synchronous answer to a request: I99 if accepted, else the error's code.

    ``request_id`` is None when the request was too broken to read one.
    """
    root, body = _response(
        request_id=request_id, response_id=None, response_code=response_code, at=at
    )
    _response_message(body, service_reference, service_reference_variant)
    return sign_document(root, signer)


def build_service_response(
    *,
    request_id: RequestId,
    gbcs_payload: bytes,
    at: datetime,
    signer: SigningIdentity,
    response_code: ResponseCode = ResponseCode.I0,
    service_reference: str = SERVICE_REFERENCE_6_23,
    service_reference_variant: str = SERVICE_REFERENCE_6_23,
) -> bytes:
    """The device's response to the 6.23 command, relayed as ``GBCSPayload``.

    The ResponseID is the RequestID with the EUIs swapped (docs §1.1).
    """
    root, body = _response(
        request_id=request_id,
        response_id=request_id.response_id(),
        response_code=response_code,
        at=at,
    )
    message = _response_message(body, service_reference, service_reference_variant)
    _sub(message, "GBCSPayload", base64.b64encode(gbcs_payload).decode("ascii"))
    return sign_document(root, signer)


def build_future_dated_device_alert(
    *,
    request_id: RequestId,
    alert_code: AlertCode,
    gbcs_payload: bytes,
    at: datetime,
    signer: SigningIdentity,
    instruction_number: int = 1,
    total_command_instructions: int = 1,
    service_reference: str = SERVICE_REFERENCE_6_23,
    service_reference_variant: str = SERVICE_REFERENCE_6_23,
) -> bytes:
    """The device's 0x00CB alert after a future-dated 6.23 ran (8F66 done, 8F67 not).

    An ASN.1 CS02b carries one activation time, so one instruction of one
    (MMC comment on FutureDatedCommandOutcomeDeviceAlertType).
    """
    root, body = _response(
        request_id=request_id,
        response_id=request_id.response_id(),
        response_code=ResponseCode.I0,
        at=at,
    )
    message = _response_message(body, service_reference, service_reference_variant)
    alert = _sub(message, "FutureDatedDeviceAlertMessage")
    _sub(alert, "FutureDatedAlertCode", f"{AlertCode(alert_code).value:04X}")
    _sub(alert, "GBCSPayload", base64.b64encode(gbcs_payload).decode("ascii"))
    _sub(alert, "InstructionNumber", str(instruction_number))
    _sub(alert, "TotalCommandInstructions", str(total_command_instructions))
    return sign_document(root, signer)


def build_dcc_alert(
    *,
    alert_code: DccAlertCode,
    alert: DccAlert,
    at: datetime,
    signer: SigningIdentity,
    request_id: RequestId | None = None,
    response_id: str | None = None,
) -> bytes:
    """A DCC alert (``sr:DCCAlertMessage``) with the code DUIS assigns to ``alert``."""
    root, body = _response(
        request_id=request_id, response_id=response_id, response_code=ResponseCode.I0, at=at
    )
    message = _sub(body, "DCCAlertMessage")
    _sub(message, "DCCAlertCode", DccAlertCode(alert_code).value)
    _write_alert(_sub(message, "DCCAlert"), alert)
    return sign_document(root, signer)


def _write_alert(parent: etree._Element, alert: DccAlert) -> None:
    if isinstance(alert, ChangeOfSupplierAlert):
        element = _sub(parent, "ChangeOfSupplier")
        _sub(element, "ChangeOfSupplierServiceRequestID", alert.change_of_supplier_request_id.duis)
        if alert.ecos_error_code is not None:
            if len(alert.ecos_error_code) != 3:
                raise ValueError("ECoSErrorCode is exactly 3 characters")
            _sub(element, "ECoSErrorCode", alert.ecos_error_code)
    elif isinstance(alert, DeviceChangeOfSupplierAlert):
        device = _sub(_sub(parent, "ChangeOfSupplier"), "DeviceChangeOfSupplier")
        _sub(device, "DeviceID", alert.device_id.duis)
        _sub(device, "DeviceType", alert.device_type.value)
        mpxns = _sub(device, "MPxNs")
        _sub(mpxns, "ImportMPxN", alert.import_mpxn)
        if alert.secondary_import_mpan is not None:
            _sub(mpxns, "SecondaryImportMPAN", alert.secondary_import_mpan)
        if alert.export_mpan is not None:
            _sub(mpxns, "ExportMPAN", alert.export_mpan)
    elif isinstance(alert, SecurityCredentialsUpdatedAlert):
        if not 1 <= len(alert.certificates) <= 3:
            raise ValueError("SecurityCredentialsUpdated carries 1..3 certificates")
        element = _sub(parent, "SecurityCredentialsUpdated")
        _sub(element, "DeviceID", alert.device_id.duis)
        _sub(element, "RemotePartyRole", DUIS_REMOTE_PARTY_ROLE[alert.remote_party_role])
        if alert.floor_seq_number is not None:
            change = _sub(element, "RemotePartySeqNumberChange")
            _sub(change, "RemotePartyFloorSeqNumber", str(alert.floor_seq_number))
            if alert.prepayment_top_up_floor_seq_number is not None:
                _sub(
                    change,
                    "RemotePartyPrepaymentTopUpFloorSeqNumber",
                    str(alert.prepayment_top_up_floor_seq_number),
                )
        for cert in alert.certificates:
            if len(cert.sha1) != 20:
                raise ValueError("CertificateHash is a 20-byte SHA-1")
            if cert.certificate_type is CertificateType.KEY_CERT_SIGN:
                raise ValueError("DUIS Certificates has no KeyCertSign type")
            entry = _sub(element, "Certificates")
            _sub(entry, "CertificateType", cert.certificate_type.value)
            _sub(entry, "CertificateHash", base64.b64encode(cert.sha1).decode("ascii"))
    else:
        breach = _sub(_sub(parent, "QuarantinedRequest"), alert.breach.value)
        _sub(breach, "RequestID", alert.request_id.duis)
        _sub(breach, "QuarantineEventRef", str(alert.quarantine_event_ref))
