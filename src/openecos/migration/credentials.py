"""Reading a meter's transitionalCoS cell (CS02a) and what the answer means.

Theory of operation. When a 0x0106's outcome is unknown, the engine asks the
meter which certificate its transitionalCoS DS cell holds before doing
anything else (:mod:`openecos.migration.lifecycle`). The read is a CS02a
"Provide Security Credential Details" (message code 0x0008) shaped as RTDS
6.24.1 shows (gbcs/cs02a.py): from the Access Control Broker, unsigned
(signature length ``00``), authorised by the meter's ACB key-agreement cell
and MACed with the ACB's KA key; it asks about one role, transitionalCoS.
The meter's answer is unsigned and MACed the same way.

:func:`read_credentials_response` checks the answer (frame, header, MAC,
content) and raises :class:`~openecos.migration.errors.CredentialsUnreadable`
otherwise; :func:`interpret_credentials` says what the cell holds by the
subject EUI *and* SKI the meter reports: the ECoS certificate's → ECOS, the
TCoS certificate's → TCOS, anything else → OTHER, no anchor → EMPTY. Both
are compared because a TCoS-by-TCoS swap may keep the entity EUI (RTDS
replaces Z1 by Z1b, both ``90B3D51F30000004``, docs/gbcs-cs02b.md §5.2).
:func:`reading_of` folds the two into the one value the lifecycle takes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs import (
    CraFlag,
    GbcsError,
    KeyUsage,
    MessageCode,
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyRole,
    StatusCode,
    TrustAnchorCellIdentifier,
    build_command,
    decode_frame,
    decode_payload,
    verify_mac_with,
)
from openecos.gbcs.security import KeyAgreement
from openecos.migration.command import AnchorIdentity, check_counter
from openecos.migration.errors import CredentialsUnreadable
from openecos.migration.record import CredentialReading

#: The cell that authorises a CS02a: the ACB's key-agreement cell (RTDS 6.24.1).
ACB_KA_CELL = TrustAnchorCellIdentifier(
    RemotePartyRole.ACCESS_CONTROL_BROKER, KeyUsage.KEY_AGREEMENT
)
READ_MESSAGE_CODE = MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS


def credentials_read_content() -> ProvideSecurityCredentialDetailsCommand:
    """The CS02a content: authorised by the ACB KA cell, asking about transitionalCoS."""
    return ProvideSecurityCredentialDetailsCommand(ACB_KA_CELL, (RemotePartyRole.TRANSITIONAL_COS,))


def build_credentials_read(
    *,
    acb: Eui64,
    device: Eui64,
    originator_counter: int,
    acb_key_agreement: KeyAgreement,
    device_key_agreement_key: ec.EllipticCurvePublicKey,
) -> bytes:
    """The unsigned, MACed CS02a from the ACB (entity ``acb``) to ``device``."""
    return build_command(
        originator=acb,
        recipient=device,
        originator_counter=check_counter("originator counter", originator_counter),
        message_code=READ_MESSAGE_CODE,
        content=credentials_read_content(),
        signer=None,
        key_agreement=acb_key_agreement,
        recipient_key_agreement_key=device_key_agreement_key,
    )


def read_credentials_response(
    message: bytes,
    *,
    acb: Eui64,
    device: Eui64,
    originator_counter: int,
    acb_key_agreement: KeyAgreement,
    device_key_agreement_key: ec.EllipticCurvePublicKey,
) -> ProvideSecurityCredentialDetailsResponse:
    """The meter's CS02a answer, checked; raises :class:`CredentialsUnreadable`."""
    try:
        frame = decode_frame(bytes(message))
    except (GbcsError, ValueError) as exc:
        raise CredentialsUnreadable(f"not a GBCS frame: {exc}") from exc
    apdu = frame.apdu
    if (
        apdu.cra_flag is not CraFlag.RESPONSE
        or apdu.message_code != READ_MESSAGE_CODE
        or apdu.originator != device
        or apdu.recipient != acb
        or apdu.originator_counter != originator_counter
    ):
        raise CredentialsUnreadable("the header does not answer the read")
    try:
        # RTDS 6.24.1: the answer is authenticated by its GMAC (ACB KA, meter KA).
        verify_mac_with(frame, acb_key_agreement, device_key_agreement_key)
        content = decode_payload(frame)
    except (GbcsError, ValueError) as exc:
        raise CredentialsUnreadable(str(exc)) from exc
    if not isinstance(content, ProvideSecurityCredentialDetailsResponse):
        raise CredentialsUnreadable(f"not a CS02a response: {type(content).__name__}")
    return content


def cell_holder(response: ProvideSecurityCredentialDetailsResponse) -> AnchorIdentity | None:
    """Who the transitionalCoS DS cell names, or ``None`` if the meter has no such anchor.

    Raises :class:`CredentialsUnreadable` when the answer says nothing of that role.
    """
    for details in response.remote_party_details:
        if details.remote_party_role is not RemotePartyRole.TRANSITIONAL_COS:
            continue
        if details.status_code is not StatusCode.SUCCESS:
            return None
        for cell in details.trust_anchor_cell_details or ():
            if cell.key_usage is KeyUsage.DIGITAL_SIGNATURE:
                return AnchorIdentity(cell.subject_unique_id, cell.subject_key_identifier)
        return None
    raise CredentialsUnreadable("the answer does not report the transitionalCoS role")


def interpret_credentials(
    response: ProvideSecurityCredentialDetailsResponse,
    *,
    ecos: AnchorIdentity,
    tcos: AnchorIdentity,
) -> CredentialReading:
    """ECOS, TCOS, OTHER or EMPTY by the identity the cell reports (module docstring)."""
    holder = cell_holder(response)
    if holder is None:
        return CredentialReading.EMPTY
    if holder == ecos:
        return CredentialReading.ECOS
    if holder == tcos:
        return CredentialReading.TCOS
    return CredentialReading.OTHER


def reading_of(
    message: bytes,
    *,
    acb: Eui64,
    device: Eui64,
    originator_counter: int,
    acb_key_agreement: KeyAgreement,
    device_key_agreement_key: ec.EllipticCurvePublicKey,
    ecos: AnchorIdentity,
    tcos: AnchorIdentity,
) -> CredentialReading:
    """:func:`read_credentials_response` then :func:`interpret_credentials`; UNREADABLE on error."""
    try:
        response = read_credentials_response(
            message,
            acb=acb,
            device=device,
            originator_counter=originator_counter,
            acb_key_agreement=acb_key_agreement,
            device_key_agreement_key=device_key_agreement_key,
        )
        return interpret_credentials(response, ecos=ecos, tcos=tcos)
    except CredentialsUnreadable:
        return CredentialReading.UNREADABLE
