"""The closed code tables of GBCS that every layer shares.

Values and names follow docs/gbcs-cs02b.md §4.1 (RTDS 4.5.0 and the public
gbcs-parser), so a reader can look each one up. Certificates carry the
remote-party role as the OU attribute in two hex digits (§7.1); the role enum
therefore also holds the two DCC Boxed XML-signing roles 0x87 and 0x89, which
are never GBCS trust anchors.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class RemotePartyRole(IntEnum):
    """GBCS RemotePartyRole, and the OU of an SMKI organisation certificate."""

    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6
    ISSUING_AUTHORITY = 7
    LOAD_CONTROLLER = 8
    OTHER = 0x7F
    # DCC Boxed / SEC Annex A "xmlSign" organisation certificates (keystore only).
    XML_SIGN = 0x87
    DSP_XML_SIGN = 0x89

    @property
    def ou(self) -> str:
        """The certificate OU spelling: two upper-case hex digits."""
        return f"{self.value:02X}"


class KeyUsage(StrEnum):
    """The single key usage of an SMKI end-entity certificate or trust-anchor cell.

    GBCS encodes it as an X.509 KeyUsage named-bit BIT STRING: digitalSignature
    is ``03 02 07 80`` and keyAgreement ``03 02 03 08`` (docs/gbcs-cs02b.md §4).
    """

    DIGITAL_SIGNATURE = "digitalSignature"
    KEY_AGREEMENT = "keyAgreement"


class CellUsage(IntEnum):
    """GBCS CellUsage of a trust-anchor cell; DER omits the default, management."""

    MANAGEMENT = 0
    PREPAYMENT_TOP_UP = 1


class CraFlag(IntEnum):
    """GBCS CRA flag of a General-Signing APDU (docs/gbcs-cs02b.md §2.1)."""

    COMMAND = 1
    RESPONSE = 2
    ALERT = 3


class CredentialsReplacementMode(IntEnum):
    """CS02b credentialsReplacementMode; the message code is 0x0100 + mode."""

    SUPPLIER_BY_SUPPLIER = 2
    NETWORK_OPERATOR_BY_NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER_BY_ACB = 4
    WAN_PROVIDER_BY_WAN_PROVIDER = 5
    TRANS_COS_BY_TRANS_COS = 6
    SUPPLIER_BY_TRANS_COS = 7
    ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY = 8
    ANY_BY_CONTINGENCY = 9

    @property
    def message_code(self) -> MessageCode:
        return MessageCode(0x0100 + self.value)


class MessageCode(IntEnum):
    """GBCS message codes this project handles (docs/gbcs-cs02b.md §4.1)."""

    CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS = 0x0008
    CS02B_UPDATE_SECURITY_CREDENTIALS_ALERT = 0x00CB
    CS02B_ROOT_BY_SUPPLIER = 0x0100
    CS02B_ROOT_BY_WAN_PROVIDER = 0x0101
    CS02B_SUPPLIER_BY_SUPPLIER = 0x0102
    CS02B_NETWORK_OPERATOR_BY_NETWORK_OPERATOR = 0x0103
    CS02B_ACCESS_CONTROL_BROKER_BY_ACB = 0x0104
    CS02B_WAN_PROVIDER_BY_WAN_PROVIDER = 0x0105
    CS02B_TRANS_COS_BY_TRANS_COS = 0x0106
    CS02B_SUPPLIER_BY_TRANS_COS = 0x0107
    CS02B_ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY = 0x0108
    CS02B_ANY_BY_CONTINGENCY = 0x0109

    @property
    def replacement_mode(self) -> CredentialsReplacementMode | None:
        """The CS02b mode this code implies, if it is a mode-carrying CS02b code."""
        if 0x0102 <= self.value <= 0x0109:
            return CredentialsReplacementMode(self.value - 0x0100)
        return None


class StatusCode(IntEnum):
    """Per-cell outcome of CS02b (ReplacementOutcome.statusCode, ENUMERATED)."""

    SUCCESS = 0
    BAD_CERTIFICATE = 5
    NO_TRUST_ANCHOR = 10
    INSUFFICIENT_MEMORY = 17
    TRUST_ANCHOR_NOT_FOUND = 25
    RESOURCES_BUSY = 30
    OTHER = 127


class AlertCode(IntEnum):
    """Alert codes carried by the 0x00CB future-dated CS02b alert."""

    FUTURE_DATED_COMMAND_ACTIONED = 0x8F66
    FUTURE_DATED_COMMAND_NOT_ACTIONED = 0x8F67


class SeqNumberUsage(IntEnum):
    """SpecialistSeqNumber.seqNumberUsage of CS02b (docs/gbcs-cs02b.md §4)."""

    PREPAYMENT_TOP_UP = 0
