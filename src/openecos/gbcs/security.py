"""Signatures and MACs of GBCS frames: ECDSA P-256 and the ACB's GMAC.

Theory of operation. Keys are never handled here: signing goes through a
:class:`DigestSigner` (a SHA-256 digest in, 64-byte ``r‖s`` out) and key
agreement through a :class:`KeyAgreement` (an ECDH shared x-coordinate out),
so a software key and a PKCS#11 key (``openecos.keys``) serve alike.
Verification works on the bytes received, at the offsets
:func:`openecos.gbcs.frame.decode_frame` recorded, and raises
(:class:`SignatureInvalid`, :class:`MacInvalid`) rather than returning a flag.

* Signature (docs/gbcs-cs02b.md §3.1): ECDSA P-256/SHA-256 over the APDU from
  the byte after ``DF`` to the end of the content, carried as ``40 ‖ r ‖ s``.
  High-S signatures are valid (RTDS has them) and signing is randomised.
* MAC (§3.2): static-static ECDH between the ACB and the device key-agreement
  keys, the GBCS single-step KDF ``SHA-256(00000001 ‖ Z ‖ OtherInfo)[:16]``,
  then AES-128-GCM with no plaintext, IV = originator ‖ ``00000000``,
  AAD = ``11 00 00 00 00 00`` ‖ the APDU through its signature, 12-byte tag.
"""

from __future__ import annotations

import hashlib
from hashlib import sha256
from hmac import compare_digest
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openecos.eui import Eui64
from openecos.gbcs.codes import CraFlag
from openecos.gbcs.errors import EncodeError, MacInvalid, SignatureInvalid
from openecos.gbcs.frame import (
    MAC_AAD_PREFIX,
    MAC_SIZE,
    SIGNATURE_SIZE,
    GbcsFrame,
    GeneralSigningApdu,
    encode_general_ciphering,
)

KDF_ALGORITHM_ID = bytes.fromhex("60857406080300")
"""The algorithm-id that opens the KDF OtherInfo (§3.2)."""
_KDF_COUNTER = b"\x00\x00\x00\x01"
_IV_TAIL = b"\x00\x00\x00\x00"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class DigestSigner(Protocol):
    """Signs a SHA-256 digest with an ECDSA P-256 key; returns the 64-byte ``r‖s``."""

    def sign_digest(self, digest: bytes) -> bytes: ...


class KeyAgreement(Protocol):
    """ECDH with a P-256 private key; returns the 32-byte shared x-coordinate Z."""

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes: ...


# -- signatures -------------------------------------------------------------------------------


def sign_apdu(apdu: GeneralSigningApdu, signer: DigestSigner) -> GeneralSigningApdu:
    """``apdu`` with a signature over its signed bytes (any signature it had is replaced)."""
    digest = hashlib.sha256(apdu.signed_bytes()).digest()
    signature = signer.sign_digest(digest)
    if len(signature) != SIGNATURE_SIZE:
        raise EncodeError(f"a signer must return 64 bytes r‖s, got {len(signature)}")
    return apdu.with_signature(bytes(signature))


def der_signature(signature: bytes) -> bytes:
    """The DER ``Ecdsa-Sig-Value`` of a 64-byte ``r‖s``, as ``cryptography`` verifies.

    Equivalent to ``encode_dss_signature(r, s)`` at a fraction of the cost (hot path):
    when neither half starts with a zero byte (255 signatures in 256) each INTEGER is
    the 32 bytes, after a ``00`` where the top bit is set, and the headers are looked up.
    """
    if signature[0] and signature[32]:
        at = (signature[0] >> 7) | ((signature[32] >> 7) << 1)
        return b"".join((_DER_R_HEADERS[at], signature[:32], _DER_S_HEADERS[at], signature[32:]))
    r = signature[:32].lstrip(b"\x00")
    s = signature[32:].lstrip(b"\x00")
    if not r or r[0] & 0x80:  # INTEGERs are signed: keep a leading zero for the top bit
        r = b"\x00" + r
    if not s or s[0] & 0x80:
        s = b"\x00" + s
    return b"".join((bytes((0x30, len(r) + len(s) + 4, 0x02, len(r))), r, bytes((0x02, len(s))), s))


# Indexed by (r's top bit) | (s's top bit) << 1, for halves with a non-zero first byte.
_DER_R_HEADERS = tuple(
    bytes((0x30, 0x44 + (at & 1) + (at >> 1), 0x02, 0x20 + (at & 1))) + b"\x00" * (at & 1)
    for at in range(4)
)
_DER_S_HEADERS = tuple(bytes((0x02, 0x20 + (at >> 1))) + b"\x00" * (at >> 1) for at in range(4))


def verify_signed_bytes(
    signed: bytes | memoryview, signature: bytes, public_key: ec.EllipticCurvePublicKey
) -> None:
    """Verifies a raw ``r‖s`` over ``signed``; raises :class:`SignatureInvalid`."""
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureInvalid("not signed" if not signature else "a signature is 64 bytes")
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise SignatureInvalid(f"GBCS signatures are P-256, not {public_key.curve.name}")
    der = der_signature(signature)
    try:
        public_key.verify(der, signed, _ECDSA_SHA256)
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify with this key") from None


def verify_signature(frame: GbcsFrame, public_key: ec.EllipticCurvePublicKey) -> None:
    """Verifies the frame's signature over the bytes as received (§3.1).

    Raises :class:`SignatureInvalid` if the APDU is unsigned or the signature
    does not verify with ``public_key``.
    """
    signature = frame.apdu.signature
    if not signature:
        raise SignatureInvalid("the APDU is not signed")
    curve = public_key.curve  # the exact type first: isinstance goes through ABCMeta
    if len(signature) != SIGNATURE_SIZE or not (
        type(curve) is ec.SECP256R1 or isinstance(curve, ec.SECP256R1)
    ):
        verify_signed_bytes(b"", signature, public_key)  # raises the reason
    # verify_signed_bytes, inlined (hot path): the signed range as received, no copy.
    try:
        public_key.verify(
            der_signature(signature),
            memoryview(frame.raw)[frame.apdu_start + 1 : frame.content_end],
            _ECDSA_SHA256,
        )
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify with this key") from None


# -- MAC --------------------------------------------------------------------------------------


def derive_mac_key(
    shared_secret: bytes,
    *,
    originator: Eui64,
    cra_flag: CraFlag,
    originator_counter: int,
    recipient: Eui64,
) -> bytes:
    """The GBCS KDF: 16-byte AES key from Z and the grouping-header values (§3.2).

    ``originator``, ``originator_counter`` and ``recipient`` are those of the
    General-Signing APDU (for a 6.23 command the TransCoS EUI, not the ACB's).
    """
    other_info = b"".join(
        (
            KDF_ALGORITHM_ID,
            originator.value,
            b"\x09",
            bytes((cra_flag,)),
            originator_counter.to_bytes(8, "big"),
            recipient.value,
        )
    )
    return hashlib.sha256(_KDF_COUNTER + shared_secret + other_info).digest()[:16]


def mac_iv(originator: Eui64) -> bytes:
    """The GCM IV: the originator system title, then four zero bytes (§3.2)."""
    return originator.value + _IV_TAIL


def compute_mac(key: bytes, originator: Eui64, apdu: bytes | memoryview) -> bytes:
    """The 12-byte GMAC tag of an encoded General-Signing APDU (``DF`` … signature)."""
    # AES-GCM with no plaintext is GMAC; the AEAD interface costs a third of Cipher's.
    aad = MAC_AAD_PREFIX + apdu
    return AESGCM(key).encrypt(originator.value + _IV_TAIL, b"", aad)[:MAC_SIZE]


def verify_mac(frame: GbcsFrame, shared_secret: bytes) -> None:
    """Verifies the General-Ciphering GMAC with the ECDH shared secret Z.

    Raises :class:`MacInvalid` when the frame has no MAC or the tag is wrong.
    """
    ciphering = frame.ciphering
    if ciphering is None:
        raise MacInvalid("the frame has no General-Ciphering MAC")
    raw, at = frame.raw, frame.apdu_start
    originator = raw[at + 12 : at + 20]
    # The KDF's OtherInfo from the header bytes as received, which decode_frame checked:
    # after DF come 09 <cra> <counter 8> 08 <originator> 08 <recipient>, and OtherInfo is
    # algorithm-id ‖ originator ‖ 09 ‖ cra ‖ counter ‖ recipient (§3.2).
    key = sha256(
        b"".join(
            (
                _KDF_COUNTER,
                shared_secret,
                KDF_ALGORITHM_ID,
                originator,
                raw[at + 1 : at + 11],
                raw[at + 21 : at + 29],
            )
        )
    ).digest()[:16]
    view = memoryview(raw)
    tag = AESGCM(key).encrypt(
        originator + _IV_TAIL, b"", b"".join((MAC_AAD_PREFIX, view[at : frame.apdu_end]))
    )
    if not compare_digest(tag[:MAC_SIZE], ciphering.mac):
        raise MacInvalid("the GMAC tag does not verify")


def verify_mac_with(
    frame: GbcsFrame, key_agreement: KeyAgreement, peer_public_key: ec.EllipticCurvePublicKey
) -> None:
    """:func:`verify_mac` with Z from ``key_agreement`` and the peer's KA public key."""
    verify_mac(frame, key_agreement.exchange(peer_public_key))


def mac_apdu(apdu: GeneralSigningApdu, shared_secret: bytes) -> bytes:
    """Encodes ``apdu`` and wraps it in a General-Ciphering APDU with its GMAC (§2.1, §3.2)."""
    encoded = apdu.encode()
    key = derive_mac_key(
        shared_secret,
        originator=apdu.originator,
        cra_flag=apdu.cra_flag,
        originator_counter=apdu.originator_counter,
        recipient=apdu.recipient,
    )
    return encode_general_ciphering(encoded, compute_mac(key, apdu.originator, encoded))


def mac_apdu_with(
    apdu: GeneralSigningApdu,
    key_agreement: KeyAgreement,
    peer_public_key: ec.EllipticCurvePublicKey,
) -> bytes:
    """:func:`mac_apdu` with Z from ``key_agreement`` and the peer's KA public key."""
    return mac_apdu(apdu, key_agreement.exchange(peer_public_key))
