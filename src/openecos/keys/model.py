"""The key-custody interface: one ``KeyStore``, handles that sign and agree.

Theory of operation. A store holds named entries. An entry is a P-256 key
pair, a certificate, or both; an entry with only a certificate serves
signature verification. A *handle* is bound to one entry and does exactly
four things: ``sign_digest`` (a 32-byte SHA-256 digest in, the 64-byte raw
r‖s out: the form of GBCS signatures and of the XMLDSig ``SignatureValue``),
``exchange`` (static ECDH, the 32-byte shared x-coordinate, which GBCS feeds
to its own KDF), ``public_key`` and ``certificate_der``. These names are the
contract that ``gbcs``'s ``DigestSigner``/``KeyAgreement`` and the DUIS
signer rely on structurally.

Rules every store keeps:

- Private keys are used only through a handle; no method returns one, and a
  PKCS#11 store never lets one leave the token (docs/architecture.md).
- SMKI keys have one usage (docs/duis-xmldsig-smki.md §3.1): a keyAgreement
  key refuses to sign, a digitalSignature key refuses to agree, a CA key
  (keyCertSign) signs but never agrees. A key with no declared usage does both.
- Entries are found by name, or by (entity EUI, key usage, role) taken from
  the certificate or the index that named the key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.keys.certificates import read_certificate
from openecos.keys.errors import (
    AmbiguousKey,
    InvalidDigest,
    InvalidKeyMaterial,
    InvalidPeerKey,
    KeyNotFound,
    KeyOperation,
    MalformedSignature,
    PrivateKeyMissing,
    WrongKeyUsage,
)

DIGEST_SIZE = 32
SIGNATURE_SIZE = 64
SHARED_SECRET_SIZE = 32
_COORDINATE = 32


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a store knows about one entry; never any private key material."""

    name: str
    key_usage: KeyUsage | None = None
    eui: Eui64 | None = None
    role: RemotePartyRole | None = None
    cell_usage: CellUsage | None = None
    serial: int | None = None
    certificate_authority: bool = False
    has_private_key: bool = True
    certificate_der: bytes | None = field(default=None, repr=False)

    def check_permits(self, operation: KeyOperation) -> None:
        """Raises PrivateKeyMissing or WrongKeyUsage unless the entry may do this."""
        if not self.has_private_key:
            raise PrivateKeyMissing(self.name, operation)
        if operation is KeyOperation.SIGN:
            allowed = self.key_usage in (None, KeyUsage.DIGITAL_SIGNATURE)
        else:
            allowed = self.key_usage in (None, KeyUsage.KEY_AGREEMENT) and not (
                self.certificate_authority
            )
        if not allowed:
            raise WrongKeyUsage(self.name, operation, self.key_usage)

    def matches(
        self,
        eui: Eui64 | None,
        key_usage: KeyUsage | None,
        role: RemotePartyRole | None,
        cell_usage: CellUsage | None,
        serial: int | None,
    ) -> bool:
        """True where every criterion given (not None) equals this entry's."""
        return all(
            wanted is None or wanted == have
            for wanted, have in (
                (eui, self.eui),
                (key_usage, self.key_usage),
                (role, self.role),
                (cell_usage, self.cell_usage),
                (serial, self.serial),
            )
        )


@runtime_checkable
class KeyHandle(Protocol):
    """One entry of a store, bound for use; satisfies DigestSigner and KeyAgreement."""

    @property
    def info(self) -> KeyInfo: ...

    @property
    def name(self) -> str: ...

    @property
    def certificate_der(self) -> bytes | None: ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    def sign_digest(self, digest: bytes) -> bytes: ...

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes: ...


class KeyStore(ABC):
    """Named P-256 keys and certificates; see the module docstring for the rules."""

    @abstractmethod
    def key(self, name: str) -> KeyHandle:
        """The entry named ``name``; raises KeyNotFound."""

    @abstractmethod
    def entries(self) -> tuple[KeyInfo, ...]:
        """Every entry, sorted by name."""

    @abstractmethod
    def generate(
        self,
        name: str,
        *,
        key_usage: KeyUsage | None = None,
        certificate_der: bytes | None = None,
    ) -> KeyHandle:
        """A new P-256 key pair created inside the store; raises DuplicateKey."""

    @abstractmethod
    def import_private_key(
        self,
        name: str,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        key_usage: KeyUsage | None = None,
        certificate_der: bytes | None = None,
    ) -> KeyHandle:
        """Takes custody of an existing key; joins a certificate-only entry of that name."""

    @abstractmethod
    def add_certificate(self, name: str, certificate_der: bytes) -> KeyHandle:
        """Files a certificate with the key of that name, or as a certificate-only entry."""

    def names(self) -> tuple[str, ...]:
        return tuple(info.name for info in self.entries())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def find(
        self,
        *,
        eui: Eui64 | None = None,
        key_usage: KeyUsage | None = None,
        role: RemotePartyRole | None = None,
        cell_usage: CellUsage | None = None,
        serial: int | None = None,
    ) -> tuple[KeyHandle, ...]:
        """Every entry that matches all the criteria given, sorted by name."""
        return tuple(
            self.key(info.name)
            for info in self.entries()
            if info.matches(eui, key_usage, role, cell_usage, serial)
        )

    def lookup(
        self,
        eui: Eui64,
        key_usage: KeyUsage,
        role: RemotePartyRole,
        *,
        cell_usage: CellUsage | None = None,
        serial: int | None = None,
    ) -> KeyHandle:
        """The one entry for (EUI, key usage, role); raises KeyNotFound or AmbiguousKey."""
        found = self.find(
            eui=eui, key_usage=key_usage, role=role, cell_usage=cell_usage, serial=serial
        )
        criteria = f"EUI {eui}, {key_usage.value}, role {role.name}"
        if cell_usage is not None:
            criteria += f", cell usage {cell_usage.name}"
        if serial is not None:
            criteria += f", serial {serial}"
        if not found:
            raise KeyNotFound(criteria)
        if len(found) > 1:
            raise AmbiguousKey(criteria, tuple(handle.name for handle in found))
        return found[0]


def check_digest(digest: bytes) -> None:
    if not isinstance(digest, bytes | bytearray) or len(digest) != DIGEST_SIZE:
        raise InvalidDigest(len(digest) if isinstance(digest, bytes | bytearray) else -1)


def check_peer(peer_public_key: object) -> ec.EllipticCurvePublicKey:
    # A type already seen to be an EllipticCurvePublicKey, with the P-256 curve object
    # itself, skips the ABC isinstance tests (on the benchmarked MAC path); anything
    # else takes them.
    if (
        type(peer_public_key) in _PUBLIC_KEY_TYPES and type(peer_public_key.curve) is ec.SECP256R1  # type: ignore[attr-defined]
    ):
        return peer_public_key  # type: ignore[return-value]
    if not isinstance(peer_public_key, ec.EllipticCurvePublicKey) or not isinstance(
        peer_public_key.curve, ec.SECP256R1
    ):
        raise InvalidPeerKey(f"ECDH needs a P-256 public key, got {type(peer_public_key).__name__}")
    _PUBLIC_KEY_TYPES.add(type(peer_public_key))
    return peer_public_key


_PUBLIC_KEY_TYPES: set[type] = set()


def check_private_key(private_key: object, source: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise InvalidKeyMaterial(source, "not a P-256 (secp256r1) EC private key")
    return private_key


def same_public_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


def info_with_certificate(
    info: KeyInfo, certificate_der: bytes, public_key: ec.EllipticCurvePublicKey | None
) -> tuple[KeyInfo, ec.EllipticCurvePublicKey]:
    """``info`` filed under the certificate's facts; checks it certifies ``public_key``.

    A usage already declared must agree with the certificate's: SMKI gives a
    key one usage, and a disagreement means the wrong certificate.
    """
    facts = read_certificate(certificate_der, info.name)
    if public_key is not None and not same_public_key(facts.public_key, public_key):
        raise InvalidKeyMaterial(info.name, "the certificate does not certify this key")
    key_usage = facts.key_usage if facts.key_usage is not None else info.key_usage
    if info.key_usage is not None and facts.key_usage not in (None, info.key_usage):
        raise InvalidKeyMaterial(
            info.name,
            f"declared {info.key_usage.value} but the certificate says {facts.key_usage}",
        )
    updated = replace(
        info,
        key_usage=key_usage,
        eui=facts.eui if facts.eui is not None else info.eui,
        role=facts.role if facts.role is not None else info.role,
        serial=facts.serial,
        certificate_authority=info.certificate_authority or facts.certificate_authority,
        certificate_der=certificate_der,
    )
    return updated, facts.public_key


def raw_signature(der_signature: bytes) -> bytes:
    """DER ECDSA-Sig-Value → the 64-byte r‖s of GBCS and XMLDSig."""
    # Fast path for what OpenSSL writes, ``30 L 02 lr r 02 ls s`` with each INTEGER
    # positive and at most 32 significant bytes (on the benchmarked signing path).
    size = len(der_signature)
    if 8 <= size <= 72 and der_signature[0] == 0x30 and der_signature[1] == size - 2:
        r_size = der_signature[3]
        s_at = 4 + r_size
        if der_signature[2] == 2 and 1 <= r_size <= 33 and s_at + 2 < size:
            s_size = der_signature[s_at + 1]
            r_bytes = der_signature[4:s_at]
            s_bytes = der_signature[s_at + 2 :]
            if (
                der_signature[s_at] == 2
                and len(s_bytes) == s_size
                and 1 <= s_size <= 33
                and r_bytes[0] < 0x80
                and s_bytes[0] < 0x80
                and (r_size < 33 or r_bytes[0] == 0)
                and (s_size < 33 or s_bytes[0] == 0)
            ):
                return r_bytes[-_COORDINATE:].rjust(_COORDINATE, b"\x00") + s_bytes[
                    -_COORDINATE:
                ].rjust(_COORDINATE, b"\x00")
    try:
        r, s = decode_dss_signature(der_signature)
    except ValueError:
        raise MalformedSignature("not a DER ECDSA-Sig-Value") from None
    return r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")


def der_signature(raw: bytes) -> bytes:
    """64-byte r‖s → DER ECDSA-Sig-Value, the form ``cryptography`` verifies."""
    if len(raw) != SIGNATURE_SIZE:
        raise MalformedSignature(f"a raw P-256 signature is {SIGNATURE_SIZE} bytes, got {len(raw)}")
    return encode_dss_signature(
        int.from_bytes(raw[:_COORDINATE], "big"), int.from_bytes(raw[_COORDINATE:], "big")
    )
