"""DUIS for Service Request 6.23: hardened XML, XSD, XMLDSig, typed request, replies.

The public surface is re-exported here; the modules behind it are:
``document`` (safe parse, schema), ``xmldsig`` (DUIS signature profile),
``request_id``, ``request`` (6.23 values), ``receiver`` (the pipeline),
``response`` / ``mmc`` (what the DCC sends back), ``binding`` (who may sign),
``codes`` and ``errors``.
"""

from openecos.duis.codes import (
    ALLOWED_COMMAND_VARIANTS_6_23,
    SCHEMA_VERSION,
    SERVICE_REFERENCE_6_23,
    DccAlertCode,
    ResponseCode,
)
from openecos.duis.document import DEFAULT_MAX_SIZE, DuisSchema, parse_document
from openecos.duis.errors import (
    FAILURE_RESPONSE_CODES,
    CounterNotIncreasing,
    DuisError,
    DuisFailure,
    InvalidBody,
    InvalidRequestId,
    RequestRefused,
    SchemaInvalid,
    SchemaUnavailable,
    SignatureError,
    SignerNotBound,
    SigningFailed,
    XmlRefused,
)
from openecos.duis.receiver import ReceivedRequest, receive_update_security_credentials_cos
from openecos.duis.request import (
    CANCELLATION_SENTINEL,
    ExecutionKind,
    ReplacementCertificatesCoS,
    RequestHeader,
    ServiceRequest,
    UpdateSecurityCredentialsCoS,
    build_update_security_credentials_cos,
    read_update_security_credentials_cos,
)
from openecos.duis.request_id import RequestId, check_counter_increases
from openecos.duis.xmldsig import (
    CertificateResolver,
    DigestSigner,
    PrivateKeySigner,
    SigningIdentity,
    VerifiedSignature,
    issuer_of,
    normalise_issuer,
    resign,
    sign_document,
    verify_signature,
)

__all__ = [
    "ALLOWED_COMMAND_VARIANTS_6_23",
    "CANCELLATION_SENTINEL",
    "DEFAULT_MAX_SIZE",
    "FAILURE_RESPONSE_CODES",
    "SCHEMA_VERSION",
    "SERVICE_REFERENCE_6_23",
    "CertificateResolver",
    "CounterNotIncreasing",
    "DccAlertCode",
    "DigestSigner",
    "DuisError",
    "DuisFailure",
    "DuisSchema",
    "ExecutionKind",
    "InvalidBody",
    "InvalidRequestId",
    "PrivateKeySigner",
    "ReceivedRequest",
    "ReplacementCertificatesCoS",
    "RequestHeader",
    "RequestId",
    "RequestRefused",
    "ResponseCode",
    "SchemaInvalid",
    "SchemaUnavailable",
    "ServiceRequest",
    "SignatureError",
    "SignerNotBound",
    "SigningFailed",
    "SigningIdentity",
    "UpdateSecurityCredentialsCoS",
    "VerifiedSignature",
    "XmlRefused",
    "build_update_security_credentials_cos",
    "check_counter_increases",
    "issuer_of",
    "normalise_issuer",
    "parse_document",
    "read_update_security_credentials_cos",
    "receive_update_security_credentials_cos",
    "resign",
    "sign_document",
    "verify_signature",
]
