"""The errors of the DUIS part: one family, each carrying the DUIS response code.

Every check the receiver makes raises a subclass of :class:`DuisError`. The
error names the failure (:class:`DuisFailure`) and the ``sr:ResponseCode`` to
answer with, so the service can build the acknowledgement without a second
table. The failure → code mapping is in :data:`FAILURE_RESPONSE_CODES`, one
place, because the E40+ and E0623xx meanings are not in the public material
(docs/duis-xmldsig-smki.md §7): the generic authorisation codes E1/E12 follow
the meanings in §1.3; the rest are provisional and marked so.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from openecos.duis.codes import ResponseCode
from openecos.errors import OpenEcosError


class DuisFailure(StrEnum):
    """Why a DUIS message was refused."""

    TOO_LARGE = "too-large"
    MALFORMED_XML = "malformed-xml"
    FORBIDDEN_XML = "forbidden-xml"  # DOCTYPE, entity declarations (XXE)
    SCHEMA_INVALID = "schema-invalid"
    UNEXPECTED_MESSAGE = "unexpected-message"  # wrong root / body for this endpoint
    SERVICE_REFERENCE_MISMATCH = "service-reference-mismatch"
    COMMAND_VARIANT_NOT_ALLOWED = "command-variant-not-allowed"
    INVALID_REQUEST_ID = "invalid-request-id"
    COUNTER_NOT_INCREASING = "counter-not-increasing"
    SIGNATURE_MISSING = "signature-missing"
    SIGNATURE_PROFILE = "signature-profile"
    UNKNOWN_SIGNING_CERTIFICATE = "unknown-signing-certificate"
    DIGEST_MISMATCH = "digest-mismatch"
    SIGNATURE_INVALID = "signature-invalid"
    SIGNER_NOT_BOUND = "signer-not-bound"  # certificate EUI, role, usage, validity, chain
    INVALID_BODY = "invalid-body"  # timezone, MPxN, base64/DER the XSD lets through


#: The response code for each failure. Provisional entries (marked P) await the
#: SEC Appendix AD text; E1 and E12 carry the meanings published in docs §1.3.
FAILURE_RESPONSE_CODES: MappingProxyType[DuisFailure, ResponseCode] = MappingProxyType(
    {
        DuisFailure.TOO_LARGE: ResponseCode.E40,  # P: not a valid DUIS message
        DuisFailure.MALFORMED_XML: ResponseCode.E40,  # P
        DuisFailure.FORBIDDEN_XML: ResponseCode.E40,  # P
        DuisFailure.SCHEMA_INVALID: ResponseCode.E40,  # P: fails the DUIS XSD
        DuisFailure.UNEXPECTED_MESSAGE: ResponseCode.E13,  # request type not valid for the URL
        DuisFailure.SERVICE_REFERENCE_MISMATCH: ResponseCode.E40,  # P
        DuisFailure.COMMAND_VARIANT_NOT_ALLOWED: ResponseCode.E12,  # Request/CV combination
        DuisFailure.INVALID_REQUEST_ID: ResponseCode.E40,  # P
        DuisFailure.COUNTER_NOT_INCREASING: ResponseCode.E42,  # P: replayed counter
        DuisFailure.SIGNATURE_MISSING: ResponseCode.E41,  # P: signature check failed
        DuisFailure.SIGNATURE_PROFILE: ResponseCode.E41,  # P
        DuisFailure.UNKNOWN_SIGNING_CERTIFICATE: ResponseCode.E1,  # invalid User
        DuisFailure.DIGEST_MISMATCH: ResponseCode.E41,  # P
        DuisFailure.SIGNATURE_INVALID: ResponseCode.E41,  # P
        DuisFailure.SIGNER_NOT_BOUND: ResponseCode.E1,  # invalid User / User Role
        DuisFailure.INVALID_BODY: ResponseCode.E062301,  # P: 6.23-specific validation
    }
)


class DuisError(OpenEcosError):
    """A DUIS message or value was refused; ``response_code`` is the answer to give."""

    failure: DuisFailure = DuisFailure.MALFORMED_XML

    def __init__(self, message: str, *, failure: DuisFailure | None = None) -> None:
        super().__init__(message)
        if failure is not None:
            self.failure = failure

    @property
    def response_code(self) -> ResponseCode:
        return FAILURE_RESPONSE_CODES[self.failure]

    def __str__(self) -> str:
        return f"{super().__str__()} [{self.failure.value}, {self.response_code.value}]"


class XmlRefused(DuisError):
    """Bytes that are not a safe, well-formed XML document (size, syntax, DOCTYPE)."""


class SchemaInvalid(DuisError):
    """The document fails DUIS Schema V5.4 (first libxml2 message in ``message``)."""

    failure = DuisFailure.SCHEMA_INVALID


class SchemaUnavailable(OpenEcosError):
    """The XSD set could not be loaded from the path given (a deployment fault)."""


class RequestRefused(DuisError):
    """The request's header or body fails a check the XSD does not make (docs §1.5)."""


class InvalidRequestId(RequestRefused):
    """Text that is not a DUIS RequestID / ResponseID."""

    failure = DuisFailure.INVALID_REQUEST_ID


class CounterNotIncreasing(RequestRefused):
    """The RequestID counter does not exceed the last one seen from that originator."""

    failure = DuisFailure.COUNTER_NOT_INCREASING


class InvalidBody(RequestRefused):
    """A 6.23 body value the XSD accepts but DUIS does not (timezone, base64, DER, MPxN)."""

    failure = DuisFailure.INVALID_BODY


class SignatureError(DuisError):
    """The XML signature is missing, outside the DUIS profile, or does not verify."""

    failure = DuisFailure.SIGNATURE_INVALID


class SignerNotBound(DuisError):
    """The signing certificate may not sign this request (EUI, role, usage, time, chain)."""

    failure = DuisFailure.SIGNER_NOT_BOUND


class SigningFailed(OpenEcosError):
    """A document could not be signed (bad signer output, bad identity): a local fault."""
