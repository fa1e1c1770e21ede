"""``SoftwareKeyStore``: keys held in process memory through ``cryptography``.

For development, tests, the simulator and the published ZAZ1 test keys. Keys
arrive from PEM or DER (PKCS#8 or SEC 1) bytes, from the loaders in
:mod:`openecos.keys.sources`, or are generated here. Entries live in a dict
guarded by a lock, so one store can serve several threads; ``cryptography``'s
key objects are themselves safe to use concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_pem_private_key,
)

from openecos.gbcs.codes import KeyUsage
from openecos.keys.errors import (
    DuplicateKey,
    InvalidKeyMaterial,
    KeyNotFound,
    KeyOperation,
    KeyStoreError,
    PrivateKeyMissing,
)
from openecos.keys.model import (
    DIGEST_SIZE,
    KeyHandle,
    KeyInfo,
    KeyStore,
    check_digest,
    check_peer,
    check_private_key,
    info_with_certificate,
    raw_signature,
    same_public_key,
)

_ECDSA_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))
_ECDH = ec.ECDH()
# (size, lr) of 30 L 02 lr r 02 ls s (so ls = size - 6 - lr) -> the slices that hold the
# 32 bytes of r and of s, for INTEGERs of 32 bytes or of 00 and 32 bytes (top bit set).
_RS_SLICES = {
    (6 + r + s, r): (slice(4 + r - 32, 4 + r), slice(6 + r + s - 32, 6 + r + s))
    for r in (32, 33)
    for s in (32, 33)
}


def _permits(info: KeyInfo, operation: KeyOperation) -> bool:
    try:
        info.check_permits(operation)
    except KeyStoreError:
        return False
    return True


def load_private_key(data: bytes, source: str = "private key") -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from unencrypted PEM or DER; raises InvalidKeyMaterial."""
    loader = load_pem_private_key if data.lstrip().startswith(b"-----BEGIN") else None
    try:
        if loader is not None:
            key = loader(data, password=None)
        else:
            key = load_der_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when a password would be needed.
        raise InvalidKeyMaterial(source, "encrypted private keys are not supported") from None
    except (ValueError, UnicodeError) as exc:
        raise InvalidKeyMaterial(source, f"not a readable private key ({exc})") from None
    return check_private_key(key, source)


class SoftwareKey:
    """A handle on one in-memory entry (see :class:`openecos.keys.KeyHandle`)."""

    __slots__ = ("_info", "_may_exchange", "_may_sign", "_private", "_public")

    def __init__(
        self,
        info: KeyInfo,
        private_key: ec.EllipticCurvePrivateKey | None,
        public_key: ec.EllipticCurvePublicKey,
    ) -> None:
        self._info = info
        self._private = private_key
        self._public = public_key
        # The entry's permissions are fixed for the handle's life: decided once here,
        # not per signature (signing a GBCS command is benchmarked, bench/gbcs_codec.py).
        self._may_sign = private_key is not None and _permits(info, KeyOperation.SIGN)
        self._may_exchange = private_key is not None and _permits(info, KeyOperation.EXCHANGE)

    def __repr__(self) -> str:
        return f"SoftwareKey({self._info!r})"

    @property
    def info(self) -> KeyInfo:
        return self._info

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def certificate_der(self) -> bytes | None:
        return self._info.certificate_der

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign_digest(self, digest: bytes) -> bytes:
        """ECDSA P-256 over a SHA-256 digest; the 64-byte raw r‖s."""
        private = self._private
        if not self._may_sign or private is None:
            self._info.check_permits(KeyOperation.SIGN)  # raises the reason
            raise PrivateKeyMissing(self._info.name, KeyOperation.SIGN)
        if type(digest) is not bytes or len(digest) != DIGEST_SIZE:
            check_digest(digest)
            digest = bytes(digest)
        der = private.sign(digest, _ECDSA_PREHASHED)
        # OpenSSL's DER 30 L 02 lr r 02 ls s, with r and s of 32 significant bytes (all but
        # about 1 in 128 signatures), to r‖s by two slices; raw_signature converts the rest.
        # Signing a GBCS command is benchmarked (bench/gbcs_codec.py).
        at = _RS_SLICES.get((len(der), der[3]))
        if at is None:
            return raw_signature(der)
        return der[at[0]] + der[at[1]]

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Static ECDH: the 32-byte x-coordinate of the shared point."""
        private = self._private
        if not self._may_exchange or private is None:
            self._info.check_permits(KeyOperation.EXCHANGE)  # raises the reason
            raise PrivateKeyMissing(self._info.name, KeyOperation.EXCHANGE)
        return private.exchange(_ECDH, check_peer(peer_public_key))

    def _private_key(self) -> ec.EllipticCurvePrivateKey | None:
        return self._private


class SoftwareKeyStore(KeyStore):
    """Keys in memory; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, SoftwareKey] = {}

    def __repr__(self) -> str:
        return f"SoftwareKeyStore({len(self._keys)} entries)"

    def key(self, name: str) -> SoftwareKey:
        with self._lock:
            try:
                return self._keys[name]
            except KeyError:
                raise KeyNotFound(f"name {name!r}") from None

    def entries(self) -> tuple[KeyInfo, ...]:
        with self._lock:
            return tuple(self._keys[name].info for name in sorted(self._keys))

    def generate(
        self,
        name: str,
        *,
        key_usage: KeyUsage | None = None,
        certificate_der: bytes | None = None,
    ) -> SoftwareKey:
        if certificate_der is not None:
            # A fresh key cannot already be certified.
            raise InvalidKeyMaterial(name, "a newly generated key has no certificate yet")
        return self.import_private_key(
            name, ec.generate_private_key(ec.SECP256R1()), key_usage=key_usage
        )

    def import_private_key(
        self,
        name: str,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        key_usage: KeyUsage | None = None,
        certificate_der: bytes | None = None,
    ) -> SoftwareKey:
        return self.add(KeyInfo(name, key_usage=key_usage), private_key, certificate_der)

    def add_certificate(self, name: str, certificate_der: bytes) -> SoftwareKey:
        return self.add(KeyInfo(name, has_private_key=False), None, certificate_der)

    def add(
        self,
        info: KeyInfo,
        private_key: ec.EllipticCurvePrivateKey | None,
        certificate_der: bytes | None = None,
    ) -> SoftwareKey:
        """Files an entry with metadata known from an index (loaders use this).

        A private key joins a certificate-only entry of the same name, and a
        certificate joins a key entry, after checking they belong together;
        anything else under an existing name is a DuplicateKey.
        """
        if private_key is not None:
            private_key = check_private_key(private_key, info.name)
        info = replace(info, has_private_key=private_key is not None)
        with self._lock:
            existing = self._keys.get(info.name)
            if existing is not None:
                info, private_key, certificate_der = _merge(
                    existing, info, private_key, certificate_der
                )
            public = private_key.public_key() if private_key is not None else None
            if existing is not None and public is None:
                public = existing.public_key()
            if certificate_der is not None:
                info, certified = info_with_certificate(info, certificate_der, public)
                public = public or certified
            if public is None:
                raise InvalidKeyMaterial(info.name, "neither a private key nor a certificate")
            handle = SoftwareKey(info, private_key, public)
            self._keys[info.name] = handle
            return handle


def transfer(
    source: SoftwareKeyStore, target: KeyStore, names: Iterable[str] | None = None
) -> tuple[KeyHandle, ...]:
    """Moves test keys (and their certificates) into another store, e.g. a token.

    The one path by which a software key's private half reaches another store;
    it stays inside this package. Certificate-only entries are copied as such.
    """
    moved: list[KeyHandle] = []
    for name in source.names() if names is None else names:
        handle = source.key(name)
        private = handle._private_key()
        if private is None:
            assert handle.certificate_der is not None
            moved.append(target.add_certificate(name, handle.certificate_der))
        else:
            moved.append(
                target.import_private_key(
                    name,
                    private,
                    key_usage=handle.info.key_usage,
                    certificate_der=handle.certificate_der,
                )
            )
    return tuple(moved)


def _merge(
    existing: SoftwareKey,
    info: KeyInfo,
    private_key: ec.EllipticCurvePrivateKey | None,
    certificate_der: bytes | None,
) -> tuple[KeyInfo, ec.EllipticCurvePrivateKey | None, bytes | None]:
    """Joins a key and a certificate that arrived separately under one name.

    Giving the same key or the same certificate twice is harmless (two
    ``--keystore`` sources may overlap); a different one is a DuplicateKey.
    Returns the merged info, the private key and a certificate still to file.
    """
    have = existing._private_key()
    if private_key is not None and have is not None:
        if private_key.private_numbers() != have.private_numbers():
            raise DuplicateKey(info.name)
    elif private_key is not None and not same_public_key(
        existing.public_key(), private_key.public_key()
    ):
        raise InvalidKeyMaterial(info.name, "the certificate does not certify this key")
    if certificate_der is not None and existing.certificate_der not in (None, certificate_der):
        raise DuplicateKey(info.name)
    merged = replace(
        existing.info,
        has_private_key=have is not None or private_key is not None,
        key_usage=existing.info.key_usage or info.key_usage,
        eui=existing.info.eui or info.eui,
        role=existing.info.role if existing.info.role is not None else info.role,
        cell_usage=existing.info.cell_usage
        if existing.info.cell_usage is not None
        else (info.cell_usage),
        certificate_authority=existing.info.certificate_authority or info.certificate_authority,
    )
    pending = certificate_der if existing.certificate_der is None else None
    return merged, have or private_key, pending
