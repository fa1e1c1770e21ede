"""Complete GBCS messages from header values and content, in one call.

Theory of operation. The CoS Party and the migration engine build commands
(sign with the authorising key, then MAC with the ACB key: docs/gbcs-cs02b.md
§2.1, §3); the device simulator builds signed responses and alerts. Both are
a General-Signing APDU whose content is a CS02a/CS02b value or already
encoded bytes, followed by signing and, for commands, the GMAC wrapper.
Nothing here reserves counters or chooses keys: the caller passes them.
"""

from __future__ import annotations

import struct
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs import frame
from openecos.gbcs.codes import CraFlag
from openecos.gbcs.cs02b import UpdateSecurityCredentialsCommand
from openecos.gbcs.decode import Content
from openecos.gbcs.encode import command_content, encode_content
from openecos.gbcs.errors import EncodeError
from openecos.gbcs.frame import (
    CRA_FLAGS,
    SIGNATURE_SIZE,
    GeneralSigningApdu,
    apdu_twin,
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
    # The hot path (bench/gbcs_codec.py measures it against one ECDSA sign) is written
    # out here rather than spread over helpers: after the signature's big-number work
    # each further Python function costs cache misses. One pass: the signed range is
    # joined once and hashed once, and the frame is DF, that range and the signature.
    if type(content) is UpdateSecurityCredentialsCommand:
        try:
            body = command_content(content, length_style)
        except ValueError as exc:  # as encode_content reports it
            raise exc if isinstance(exc, EncodeError) else EncodeError(str(exc)) from None
    elif isinstance(content, bytes):
        body = content
    else:
        body = encode_content(content, length_style)
    size = len(body)
    signed = None
    flag = CRA_FLAGS.get(cra_flag)
    if date_time is None and 0x100 <= size < 0x10000 and flag is not None:
        try:  # fixed part, date-time 00, other-information 02 <code>, content length
            header = _HEADER_82.pack(
                9, cra_flag, originator_counter, 8, originator.value, 8, recipient.value,
                0, 2, message_code, 0x82, size,
            )  # fmt: skip
        except struct.error:
            pass  # out of range: signed_bytes names the fault
        else:
            signed = header + body
    if signed is None:
        signed = signed_bytes(
            cra_flag, originator_counter, originator, recipient, message_code, body, date_time
        )
    twin: Any = _ApduTwin(
        CRA_FLAGS[cra_flag] if flag is None else flag,
        originator_counter,
        originator,
        recipient,
        message_code,
        body,
        date_time,
        b"",
        b"",
    )
    if signer is not None:
        # Last, so that as little Python as possible runs after the big-number work
        # (with cold caches it costs about twice as much as before it).
        signature = signer.sign_digest(sha256(signed).digest())
        if len(signature) != SIGNATURE_SIZE:
            raise EncodeError(f"a signer must return 64 bytes r‖s, got {len(signature)}")
        if type(signature) is not bytes:
            signature = bytes(signature)
        twin.signature = signature
        encoded = b"".join((b"\xdf", signed, b"\x40", signature))
    else:
        encoded = b"".join((b"\xdf", signed, b"\x00"))
    twin.__class__ = GeneralSigningApdu  # openecos.gbcs._fast.constructor, inlined
    apdu: GeneralSigningApdu = twin
    # apdu.encode() of this very value returns these bytes (see frame._last_encoded).
    frame._last_encoded = (apdu, encoded)
    return apdu


_ApduTwin: Any = apdu_twin
_HEADER_82 = struct.Struct(">BBQB8sB8sBBHBH")
"""The signed range up to a content of 256 bytes to 64 KiB (every 6.23 command): fixed
part, date-time ``00``, other-information ``02 <code>``, content length ``82 HH LL``."""


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
