"""GBCS: General-Signing and General-Ciphering frames, CS02a/CS02b, signatures and MACs.

Bytes in, values out; no I/O. Decode with :func:`decode_frame` then
:func:`decode_payload`; verify with :func:`verify_signature` and
:func:`verify_mac`; build with :func:`build_command` or :func:`build_apdu`.
"""

from openecos.gbcs.builder import build_apdu, build_command
from openecos.gbcs.codes import (
    AlertCode,
    CellUsage,
    CraFlag,
    CredentialsReplacementMode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    SeqNumberUsage,
    StatusCode,
)
from openecos.gbcs.cs02a import (
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyDetails,
    TrustAnchorCellContents,
)
from openecos.gbcs.cs02b import (
    CANCELLATION_DATE_TIME,
    AuthorisingRemotePartyControl,
    ExecutionOutcome,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    SpecialistSeqNumber,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
)
from openecos.gbcs.decode import (
    Content,
    decode_update_security_credentials_alert,
    decode_update_security_credentials_command,
    decode_update_security_credentials_response,
)
from openecos.gbcs.decode_cs02a import (
    decode_provide_security_credential_details_command,
    decode_provide_security_credential_details_response,
)
from openecos.gbcs.encode import encode_content
from openecos.gbcs.errors import (
    DecodeError,
    DecodeReason,
    EncodeError,
    GbcsError,
    MacInvalid,
    MessageCodeMismatch,
    SignatureInvalid,
)
from openecos.gbcs.frame import (
    MAC_AAD_PREFIX,
    RTDS_RESPONSE_DATE_TIME,
    GbcsFrame,
    GeneralCiphering,
    GeneralSigningApdu,
    decode_frame,
    encode_general_ciphering,
)
from openecos.gbcs.payload import check_message_code, decode_payload
from openecos.gbcs.security import (
    DigestSigner,
    KeyAgreement,
    compute_mac,
    derive_mac_key,
    mac_apdu,
    mac_apdu_with,
    mac_iv,
    sign_apdu,
    verify_mac,
    verify_mac_with,
    verify_signature,
    verify_signed_bytes,
)
from openecos.gbcs.tlv import LengthStyle

__all__ = [
    "CANCELLATION_DATE_TIME",
    "MAC_AAD_PREFIX",
    "RTDS_RESPONSE_DATE_TIME",
    "AlertCode",
    "AuthorisingRemotePartyControl",
    "CellUsage",
    "Content",
    "CraFlag",
    "CredentialsReplacementMode",
    "DecodeError",
    "DecodeReason",
    "DigestSigner",
    "EncodeError",
    "ExecutionOutcome",
    "GbcsError",
    "GbcsFrame",
    "GeneralCiphering",
    "GeneralSigningApdu",
    "KeyAgreement",
    "KeyUsage",
    "LengthStyle",
    "MacInvalid",
    "MessageCode",
    "MessageCodeMismatch",
    "ProvideSecurityCredentialDetailsCommand",
    "ProvideSecurityCredentialDetailsResponse",
    "RemotePartyDetails",
    "RemotePartyRole",
    "RemotePartySeqNumberChange",
    "ReplacementOutcome",
    "SeqNumberUsage",
    "SignatureInvalid",
    "SpecialistSeqNumber",
    "StatusCode",
    "TrustAnchorCellContents",
    "TrustAnchorCellIdentifier",
    "TrustAnchorReplacement",
    "UpdateSecurityCredentialsAlert",
    "UpdateSecurityCredentialsCommand",
    "UpdateSecurityCredentialsResponse",
    "build_apdu",
    "build_command",
    "check_message_code",
    "compute_mac",
    "decode_frame",
    "decode_payload",
    "decode_provide_security_credential_details_command",
    "decode_provide_security_credential_details_response",
    "decode_update_security_credentials_alert",
    "decode_update_security_credentials_command",
    "decode_update_security_credentials_response",
    "derive_mac_key",
    "encode_content",
    "encode_general_ciphering",
    "mac_apdu",
    "mac_apdu_with",
    "mac_iv",
    "sign_apdu",
    "verify_mac",
    "verify_mac_with",
    "verify_signature",
    "verify_signed_bytes",
]
