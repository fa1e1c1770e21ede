"""Complete GBCS messages from header values and content, in one call.

Theory of operation. The CoS Party and the migration engine build commands
(sign with the authorising key, then MAC with the ACB key: docs/gbcs-cs02b.md
§2.1, §3); the device simulator builds signed responses and alerts. Both are
a General-Signing APDU whose content is a CS02a/CS02b value or already
encoded bytes, followed by signing and, for commands, the GMAC wrapper.
Nothing here reserves counters or chooses keys: the caller passes them.
"""

from __future__ import annotations

from hashlib import sha256

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import CraFlag
from openecos.gbcs.decode import Content
from openecos.gbcs.encode import encode_content
from openecos.gbcs.errors import EncodeError
from openecos.gbcs.frame import (
    CRA_FLAGS,
    SIGNATURE_SIZE,
    GeneralSigningApdu,
    new_apdu,
    remember_encoding,
    signed_bytes,
)
from openecos.gbcs.security import DigestSigner, KeyAgreement, mac_apdu_with
from openecos.gbcs.tlv import LengthStyle


def build_apdu(
    *,
    cra_flag: CraFlag,
    originator: Eui64,
    recipient: Eui64,
    originator_counter: int,
    message_code: int,
    content: Content | bytes,
    signer: DigestSigner | None,
    date_time: bytes | None = None,
    length_style: LengthStyle = LengthStyle.DER,
) -> GeneralSigningApdu:
    """A General-Signing APDU, signed when ``signer`` is given, else with signature ``00``.

    A device simulator passes ``length_style=LengthStyle.DEVICE`` and the
    response date-time (:data:`openecos.gbcs.frame.RTDS_RESPONSE_DATE_TIME`).
    """
    body = content if isinstance(content, bytes) else encode_content(content, length_style)
    # One pass: the signed range is joined once, hashed once, and the frame is that range
    # between DF and the signature block (bench/gbcs_codec.py measures this against one sign).
    signed = signed_bytes(
        cra_flag, originator_counter, originator, recipient, message_code, body, date_time
    )
    if signer is None:
        signature = b""
    else:
        signature = signer.sign_digest(sha256(signed).digest())
        if len(signature) != SIGNATURE_SIZE:
            raise EncodeError(f"a signer must return 64 bytes r‖s, got {len(signature)}")
        signature = bytes(signature)
    apdu = new_apdu(
        CRA_FLAGS[cra_flag],
        originator_counter,
        originator,
        recipient,
        message_code,
        body,
        date_time,
        b"",
        signature,
    )
    return remember_encoding(apdu, b"".join((b"\xdf", signed, bytes((len(signature),)), signature)))


def build_command(
    *,
    originator: Eui64,
    recipient: Eui64,
    originator_counter: int,
    message_code: int,
    content: Content | bytes,
    signer: DigestSigner | None,
    key_agreement: KeyAgreement | None,
    recipient_key_agreement_key: ec.EllipticCurvePublicKey | None = None,
) -> bytes:
    """A complete command: signed APDU wrapped with the ACB GMAC.

    ``originator`` is the signing remote party (TransCoS for 0x0107/0x0106),
    ``recipient`` the device; ``key_agreement`` is the ACB key-agreement key and
    ``recipient_key_agreement_key`` the device's KA public key. With
    ``key_agreement=None`` the APDU is returned bare, as the Recovery command is
    sent (§2.1); with ``signer=None`` it is unsigned (``00``), MAC only (ACB by ACB).
    """
    apdu = build_apdu(
        cra_flag=CraFlag.COMMAND,
        originator=originator,
        recipient=recipient,
        originator_counter=originator_counter,
        message_code=message_code,
        content=content,
        signer=signer,
    )
    if key_agreement is None:
        return apdu.encode()
    if recipient_key_agreement_key is None:
        raise EncodeError("a MACed command needs the device's key-agreement public key")
    return mac_apdu_with(apdu, key_agreement, recipient_key_agreement_key)
