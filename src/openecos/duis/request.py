"""The SRV 6.23 request as typed values, read from and written to DUIS XML.

Theory of operation: :func:`read_update_security_credentials_cos` turns an
``sr:Request`` tree (already parsed safely, schema-valid and signature-checked
by :mod:`openecos.duis.receiver`) into a :class:`ServiceRequest`, making the
checks the XSD does not (docs/duis-xmldsig-smki.md §1.5): the header names
6.23/6.23 and an allowed CommandVariant for an ``UpdateSecurityCredentialsCoS``
body, ExecutionDateTime has a timezone, every certificate is strict base64 of
one complete DER SEQUENCE, ImportMPxN is digits. It does not rely on the XSD
having run: a missing or misplaced element is an error of its own.

:func:`build_update_security_credentials_cos` is the inverse, for suppliers'
tools and for tests (the element order is the XSD sequence, §1.2).

The 3000-12-31T00:00:00Z sentinel is compared as an instant, so ``.00Z`` and
``Z`` spellings both cancel (§1.2).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from openecos.duis.codes import (
    ALLOWED_COMMAND_VARIANTS_6_23,
    SCHEMA_VERSION,
    SERVICE_REFERENCE_6_23,
)
from openecos.duis.document import NS_SR
from openecos.duis.errors import DuisFailure, InvalidBody, RequestRefused
from openecos.duis.request_id import RequestId
from openecos.duis.xsdtypes import (
    certificate_from_base64,
    format_datetime,
    parse_boolean,
    parse_bounded_integer,
    parse_datetime,
)

_SR = f"{{{NS_SR}}}"
FLOOR_SEQUENCE_NUMBER_MAX = (1 << 63) - 1
#: DUIS's "cancel the pending future-dated 6.23" sentinel (docs §1.2).
CANCELLATION_SENTINEL = datetime(3000, 12, 31, tzinfo=UTC)
BODY_ELEMENT_6_23 = "UpdateSecurityCredentialsCoS"


class ExecutionKind(Enum):
    """How a 6.23 is to be executed, read from ExecutionDateTime."""

    IMMEDIATE = "immediate"
    FUTURE_DATED = "future-dated"
    CANCELLATION = "cancellation"


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """``sr:Header`` of a request."""

    request_id: RequestId
    command_variant: int
    service_reference: str
    service_reference_variant: str
    first_in_sequence: bool | None = None
    preceding_request_id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class ReplacementCertificatesCoS:
    """``SupplierReplacementCertificates``: DER of the new supplier's certificates."""

    digital_signing: bytes
    key_agreement: bytes | None = None
    key_agreement_top_up: bytes | None = None


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentialsCoS:
    """The ``sr:UpdateSecurityCredentialsCoS`` body (SRV 6.23), XSD order."""

    supplier_floor_seq_number: int
    replacement_certificates: ReplacementCertificatesCoS
    certification_path_certificates: tuple[bytes, ...]
    apply_time_based_cpv_checks: bool
    import_mpxn: str
    supplier_prepayment_top_up_floor_seq_number: int | None = None
    execution_date_time: datetime | None = None  # aware, UTC

    @property
    def kind(self) -> ExecutionKind:
        if self.execution_date_time is None:
            return ExecutionKind.IMMEDIATE
        if self.execution_date_time == CANCELLATION_SENTINEL:
            return ExecutionKind.CANCELLATION
        return ExecutionKind.FUTURE_DATED

    @property
    def certificates(self) -> tuple[bytes, ...]:
        """Every certificate carried: replacements (DS, KA, KA top-up) then the path."""
        rc = self.replacement_certificates
        replacements = (rc.digital_signing, rc.key_agreement, rc.key_agreement_top_up)
        return (
            tuple(c for c in replacements if c is not None) + self.certification_path_certificates
        )


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """A whole 6.23 request: header and body."""

    header: RequestHeader
    body: UpdateSecurityCredentialsCoS
    schema_version: str = SCHEMA_VERSION


# -- reading --------------------------------------------------------------------------------


class _Cursor:
    """Walks an element's children in XSD sequence order."""

    __slots__ = ("_index", "_kids", "_where")

    def __init__(self, element: etree._Element, where: str) -> None:
        self._kids = [k for k in element if isinstance(k.tag, str)]
        self._index = 0
        self._where = where

    def optional(self, name: str) -> etree._Element | None:
        if self._index < len(self._kids) and self._kids[self._index].tag == f"{_SR}{name}":
            self._index += 1
            return self._kids[self._index - 1]
        return None

    def required(self, name: str) -> etree._Element:
        element = self.optional(name)
        if element is None:
            raise _structure(f"{self._where}: {name} missing or out of order")
        return element

    def end(self) -> None:
        if self._index != len(self._kids):
            extra = etree.QName(self._kids[self._index]).localname
            raise _structure(f"{self._where}: unexpected element {extra}")


def _structure(message: str) -> RequestRefused:
    return RequestRefused(message, failure=DuisFailure.SCHEMA_INVALID)


def _text(element: etree._Element) -> str:
    if len(element):
        raise _structure(f"{etree.QName(element).localname} must hold text only")
    return element.text or ""


def read_header(request: etree._Element) -> RequestHeader:
    """Reads ``sr:Header`` of an ``sr:Request`` (no consistency checks)."""
    if request.tag != f"{_SR}Request":
        raise RequestRefused(
            f"expected sr:Request, got {request.tag}", failure=DuisFailure.UNEXPECTED_MESSAGE
        )
    top = _Cursor(request, "Request")
    header = _Cursor(top.required("Header"), "Header")
    request_id = RequestId.parse(_text(header.required("RequestID")))
    first = header.optional("FirstInSequence")
    preceding = header.optional("PrecedingServiceRequestID")
    cv_text = _text(header.required("CommandVariant")).strip()
    if not cv_text.isdigit() or len(cv_text) > 3:
        raise _structure(f"CommandVariant {cv_text!r} is not an integer")
    result = RequestHeader(
        request_id=request_id,
        command_variant=int(cv_text),
        service_reference=_text(header.required("ServiceReference")).strip(),
        service_reference_variant=_text(header.required("ServiceReferenceVariant")).strip(),
        first_in_sequence=None if first is None else parse_boolean(_text(first), "FirstInSequence"),
        preceding_request_id=None if preceding is None else RequestId.parse(_text(preceding)),
    )
    header.end()
    return result


def check_header_6_23(
    header: RequestHeader,
    body_element: str,
    allowed_command_variants: frozenset[int] = ALLOWED_COMMAND_VARIANTS_6_23,
) -> None:
    """ServiceReference, variant, body element and CommandVariant agree (docs §1.5)."""
    if body_element != BODY_ELEMENT_6_23:
        raise RequestRefused(
            f"body {body_element} is not {BODY_ELEMENT_6_23}",
            failure=DuisFailure.UNEXPECTED_MESSAGE,
        )
    if (header.service_reference, header.service_reference_variant) != (
        SERVICE_REFERENCE_6_23,
        SERVICE_REFERENCE_6_23,
    ):
        raise RequestRefused(
            f"ServiceReference {header.service_reference}/{header.service_reference_variant} "
            f"does not match the {body_element} body (6.23/6.23)",
            failure=DuisFailure.SERVICE_REFERENCE_MISMATCH,
        )
    if header.command_variant not in allowed_command_variants:
        raise RequestRefused(
            f"CommandVariant {header.command_variant} is not allowed for 6.23",
            failure=DuisFailure.COMMAND_VARIANT_NOT_ALLOWED,
        )


def body_element_name(request: etree._Element) -> str:
    """The local name of the single child of ``sr:Body``."""
    body = request.find(f"{_SR}Body")
    kids = [] if body is None else [k for k in body if isinstance(k.tag, str)]
    if len(kids) != 1:
        raise _structure("sr:Body must hold exactly one request element")
    name: str = etree.QName(kids[0]).localname
    return name


def read_update_security_credentials_cos(
    request: etree._Element,
    allowed_command_variants: frozenset[int] = ALLOWED_COMMAND_VARIANTS_6_23,
) -> ServiceRequest:
    """Reads and checks a 6.23 ``sr:Request`` tree; raises a :class:`DuisError` subclass."""
    header = read_header(request)
    check_header_6_23(header, body_element_name(request), allowed_command_variants)
    top = _Cursor(request, "Request")
    top.required("Header")
    body_wrapper = top.required("Body")
    body = _read_body(_Cursor(body_wrapper, "Body").required(BODY_ELEMENT_6_23))
    return ServiceRequest(header, body, request.get("schemaVersion", ""))


def _read_body(element: etree._Element) -> UpdateSecurityCredentialsCoS:
    cursor = _Cursor(element, BODY_ELEMENT_6_23)
    when = cursor.optional("ExecutionDateTime")
    floor = cursor.required("SupplierFloorSeqNumber")
    top_up = cursor.optional("SupplierPrepaymentTopUpFloorSeqNumber")
    replacements = _Cursor(cursor.required("SupplierReplacementCertificates"), "Replacements")
    ds = replacements.required("DigitalSigningCertificate")
    ka = replacements.optional("KeyAgreementCertificate")
    ka_top_up = replacements.optional("KeyAgreementTopUpCertificate")
    replacements.end()
    path = _Cursor(cursor.required("CertificationPathCertificates"), "CertificationPath")
    path_certs: list[bytes] = []
    while (cert := path.optional("Certificate")) is not None:
        path_certs.append(
            certificate_from_base64(_text(cert), f"path certificate {len(path_certs) + 1}")
        )
    path.end()
    if not 1 <= len(path_certs) <= 3:
        raise _structure(f"{len(path_certs)} certification path certificates, DUIS allows 1..3")
    cpv = parse_boolean(
        _text(cursor.required("ApplyTimeBasedCPVChecks")), "ApplyTimeBasedCPVChecks"
    )
    mpxn = _text(cursor.required("ImportMPxN"))
    cursor.end()
    # ImportMPxN: an MPAN (13 digits) or an MPRN (up to 10 digits) (docs §1.5).
    if not (mpxn.isascii() and mpxn.isdigit() and 1 <= len(mpxn) <= 13):
        raise InvalidBody(f"ImportMPxN {mpxn!r} is not 1..13 digits")
    return UpdateSecurityCredentialsCoS(
        execution_date_time=None
        if when is None
        else parse_datetime(_text(when), "ExecutionDateTime"),
        supplier_floor_seq_number=parse_bounded_integer(
            _text(floor), "SupplierFloorSeqNumber", FLOOR_SEQUENCE_NUMBER_MAX
        ),
        supplier_prepayment_top_up_floor_seq_number=None
        if top_up is None
        else parse_bounded_integer(
            _text(top_up), "SupplierPrepaymentTopUpFloorSeqNumber", FLOOR_SEQUENCE_NUMBER_MAX
        ),
        replacement_certificates=ReplacementCertificatesCoS(
            digital_signing=certificate_from_base64(_text(ds), "DigitalSigningCertificate"),
            key_agreement=None
            if ka is None
            else certificate_from_base64(_text(ka), "KeyAgreementCertificate"),
            key_agreement_top_up=None
            if ka_top_up is None
            else certificate_from_base64(_text(ka_top_up), "KeyAgreementTopUpCertificate"),
        ),
        certification_path_certificates=tuple(path_certs),
        apply_time_based_cpv_checks=cpv,
        import_mpxn=mpxn,
    )


# -- writing --------------------------------------------------------------------------------


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{_SR}{name}")
    if text is not None:
        element.text = text
    return element


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_update_security_credentials_cos(request: ServiceRequest) -> etree._Element:
    """The unsigned ``sr:Request`` tree for ``request`` (sign it with ``sign_document``)."""
    root = etree.Element(f"{_SR}Request", nsmap={"sr": NS_SR}, schemaVersion=request.schema_version)
    header = _sub(root, "Header")
    h = request.header
    _sub(header, "RequestID", h.request_id.duis)
    if h.first_in_sequence is not None:
        _sub(header, "FirstInSequence", "true" if h.first_in_sequence else "false")
    if h.preceding_request_id is not None:
        _sub(header, "PrecedingServiceRequestID", h.preceding_request_id.duis)
    _sub(header, "CommandVariant", str(h.command_variant))
    _sub(header, "ServiceReference", h.service_reference)
    _sub(header, "ServiceReferenceVariant", h.service_reference_variant)
    b = request.body
    body = _sub(_sub(root, "Body"), BODY_ELEMENT_6_23)
    if b.execution_date_time is not None:
        _sub(body, "ExecutionDateTime", format_datetime(b.execution_date_time))
    _sub(body, "SupplierFloorSeqNumber", str(b.supplier_floor_seq_number))
    if b.supplier_prepayment_top_up_floor_seq_number is not None:
        _sub(
            body,
            "SupplierPrepaymentTopUpFloorSeqNumber",
            str(b.supplier_prepayment_top_up_floor_seq_number),
        )
    replacements = _sub(body, "SupplierReplacementCertificates")
    rc = b.replacement_certificates
    _sub(replacements, "DigitalSigningCertificate", _b64(rc.digital_signing))
    if rc.key_agreement is not None:
        _sub(replacements, "KeyAgreementCertificate", _b64(rc.key_agreement))
    if rc.key_agreement_top_up is not None:
        _sub(replacements, "KeyAgreementTopUpCertificate", _b64(rc.key_agreement_top_up))
    path = _sub(body, "CertificationPathCertificates")
    for cert in b.certification_path_certificates:
        _sub(path, "Certificate", _b64(cert))
    _sub(body, "ApplyTimeBasedCPVChecks", "true" if b.apply_time_based_cpv_checks else "false")
    _sub(body, "ImportMPxN", b.import_mpxn)
    return root
