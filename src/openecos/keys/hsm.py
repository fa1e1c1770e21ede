"""``Pkcs11KeyStore``: keys that live in a PKCS#11 token (SoftHSM2 or an HSM).

Theory of operation. A store opens one module, one token and one logged-in
R/W session, and keeps them for its lifetime. Entries are the token's
objects grouped by ``CKA_LABEL``: an EC P-256 private key, its public key and
an X.509 certificate object may share a label; a certificate alone is a
certificate-only entry. Other objects (other curves, other key types) are
not entries.

Custody (docs/architecture.md invariant): every private key this store
creates or imports has ``CKA_TOKEN``, ``CKA_PRIVATE`` and ``CKA_SENSITIVE``
true and ``CKA_EXTRACTABLE`` false, so its value never leaves the token.
``CKA_SIGN``/``CKA_DERIVE`` follow the SMKI key usage, so the token refuses a
wrong-usage call even if this code did not. ``exchange`` derives a session
``CKK_GENERIC_SECRET`` of 32 bytes with ``CKM_ECDH1_DERIVE``/``CKD_NULL``
(the shared x-coordinate) and reads its ``CKA_VALUE``: only that derived
secret is extractable, because GBCS runs its own KDF over it in Python.

Signing uses ``CKM_ECDSA`` over the caller's SHA-256 digest: SoftHSM 2.6
offers no ``CKM_ECDSA_SHA256``, and ``CKM_ECDSA`` already returns the raw
r‖s (docs/duis-xmldsig-smki.md §5).

Threads: python-pkcs11 sessions are not thread-safe, so every token call
runs under the store's lock; open one store per worker thread for parallel
signing. PKCS#11 login belongs to the process, not the session, so the stores
of one process share one login per token (see :mod:`openecos.keys.pkcs11_session`).
Handles are cached per label, so a signature costs one ``C_SignInit`` and one
``C_Sign`` (about 0.06 ms on SoftHSM). Sessions do not survive ``fork``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from asn1crypto.core import OctetString
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import KDF, Attribute, CertificateType, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from openecos.gbcs.codes import KeyUsage
from openecos.keys.certificates import read_certificate
from openecos.keys.errors import (
    AmbiguousKey,
    DuplicateKey,
    InvalidKeyMaterial,
    KeyNotFound,
    KeyOperation,
    TokenError,
    TokenFailure,
    WrongKeyUsage,
)
from openecos.keys.model import (
    SHARED_SECRET_SIZE,
    SIGNATURE_SIZE,
    KeyInfo,
    KeyStore,
    check_digest,
    check_peer,
    check_private_key,
    info_with_certificate,
    same_public_key,
)
from openecos.keys.pkcs11_session import Pkcs11Config, close_session, open_session

# DER of the named curve secp256r1 (prime256v1), the only curve GBCS uses.
_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
_T = TypeVar("_T")


class Pkcs11Key:
    """A handle on one token entry (see :class:`openecos.keys.KeyHandle`)."""

    __slots__ = ("_info", "_private", "_public", "_store")

    def __init__(
        self,
        store: Pkcs11KeyStore,
        info: KeyInfo,
        private: Any,
        public: ec.EllipticCurvePublicKey | None,
    ) -> None:
        self._store = store
        self._info = info
        self._private = private
        self._public = public

    def __repr__(self) -> str:
        return f"Pkcs11Key({self._info!r})"

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
        if self._public is None:
            raise InvalidKeyMaterial(
                self.name, "the token holds neither its public key nor its certificate"
            )
        return self._public

    def sign_digest(self, digest: bytes) -> bytes:
        """ECDSA P-256 in the token over a SHA-256 digest; the 64-byte raw r‖s."""
        self._info.check_permits(KeyOperation.SIGN)
        check_digest(digest)
        # python-pkcs11 offers .sign only where the token says CKA_SIGN is true.
        sign = getattr(self._private, "sign", None)
        if sign is None:
            raise WrongKeyUsage(self.name, KeyOperation.SIGN, self._info.key_usage)
        signature: bytes = self._store._call(lambda: sign(bytes(digest), mechanism=Mechanism.ECDSA))
        if len(signature) != SIGNATURE_SIZE:
            raise TokenError(
                TokenFailure.OPERATION_FAILED, f"a {len(signature)}-byte ECDSA signature"
            )
        return signature

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Static ECDH in the token: the 32-byte x-coordinate of the shared point."""
        self._info.check_permits(KeyOperation.EXCHANGE)
        point = check_peer(peer_public_key).public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        derive_key = getattr(self._private, "derive_key", None)  # only where CKA_DERIVE
        if derive_key is None:
            raise WrongKeyUsage(self.name, KeyOperation.EXCHANGE, self._info.key_usage)

        def derive() -> bytes:
            secret = derive_key(
                KeyType.GENERIC_SECRET,
                SHARED_SECRET_SIZE * 8,
                mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(KDF.NULL, None, point),
                # A session object, readable: the one value allowed out (module docstring).
                template={
                    Attribute.TOKEN: False,
                    Attribute.SENSITIVE: False,
                    Attribute.EXTRACTABLE: True,
                },
            )
            try:
                return bytes(secret[Attribute.VALUE])
            finally:
                secret.destroy()

        value: bytes = self._store._call(derive)
        if len(value) != SHARED_SECRET_SIZE:
            raise TokenError(TokenFailure.OPERATION_FAILED, f"a {len(value)}-byte ECDH secret")
        return value


class Pkcs11KeyStore(KeyStore):
    """P-256 keys in a PKCS#11 token; see the module docstring."""

    def __init__(
        self,
        module: str | Path | None = None,
        token_label: str | None = None,
        user_pin: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = Pkcs11Config.resolve(module, token_label, user_pin, environ)
        self._lock = threading.RLock()
        self._handles: dict[str, Pkcs11Key] = {}
        self._session, self._login_key = open_session(self.config)
        self._closed = False
        self.entries()  # one scan fills the handle cache

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore({self.config.module!r}, token {self.config.token_label!r})"

    def __enter__(self) -> Pkcs11KeyStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Logs out and closes the session; later calls raise TokenError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._handles.clear()
            close_session(self._session, self._login_key)

    # -- lookup -----------------------------------------------------------

    def key(self, name: str) -> Pkcs11Key:
        with self._lock:
            handle = self._handles.get(name)
            if handle is None:
                # Another process may have added it since the last scan.
                handle = self._load(name)
            return handle

    def entries(self) -> tuple[KeyInfo, ...]:
        with self._lock:
            labels = self._call(self._labels)
            self._handles = {name: self._load(name) for name in sorted(labels)}
            return tuple(handle.info for handle in self._handles.values())

    def _labels(self) -> set[str]:
        labels: set[str] = set()
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.CERTIFICATE):
            for obj in self._session.get_objects({Attribute.CLASS: object_class}):
                label = obj[Attribute.LABEL]
                if label and _is_entry_object(obj):
                    labels.add(label)
        return labels

    def _load(self, name: str) -> Pkcs11Key:
        """Builds the handle for ``name`` from the token's objects of that label."""
        objects = self._call(
            lambda: [
                obj
                for obj in self._session.get_objects({Attribute.LABEL: name})
                if _is_entry_object(obj)
            ]
        )
        by_class: dict[ObjectClass, list[Any]] = {}
        for obj in objects:
            by_class.setdefault(obj.object_class, []).append(obj)
        privates = by_class.get(ObjectClass.PRIVATE_KEY, [])
        publics = by_class.get(ObjectClass.PUBLIC_KEY, [])
        certificates = by_class.get(ObjectClass.CERTIFICATE, [])
        for kind, found in (
            ("private key", privates),
            ("public key", publics),
            ("certificate", certificates),
        ):
            if len(found) > 1:
                raise AmbiguousKey(f"label {name!r} ({len(found)} {kind} objects)", (name,))
        if not privates and not certificates:
            raise KeyNotFound(f"label {name!r} in token {self.config.token_label!r}")
        private = privates[0] if privates else None
        public = self._call(lambda: _public_from_object(publics[0])) if publics else None
        info = KeyInfo(name, has_private_key=private is not None)
        if private is not None:
            info = KeyInfo(
                name, key_usage=self._call(lambda: _usage_from_flags(private)), has_private_key=True
            )
        if certificates:
            der = bytes(self._call(lambda: certificates[0][Attribute.VALUE]))
            info, certified = info_with_certificate(info, der, public)
            public = public or certified
        handle = Pkcs11Key(self, info, private, public)
        self._handles[name] = handle
        return handle

    # -- custody ----------------------------------------------------------

    def generate(
        self,
        name: str,
        *,
        key_usage: KeyUsage | None = None,
        certificate_der: bytes | None = None,
    ) -> Pkcs11Key:
        """A P-256 key pair generated inside the token (CKM_EC_KEY_PAIR_GEN)."""
        if certificate_der is not None:
            raise InvalidKeyMaterial(name, "a newly generated key has no certificate yet")
        with self._lock:
            self._require_absent(name)
            capabilities = _capabilities(key_usage)

            def generate() -> None:
                params = self._session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: _P256_PARAMS}, local=True
                )
                public, private = params.generate_keypair(
                    store=True,
                    label=name,
                    capabilities=capabilities,
                    public_template={Attribute.PRIVATE: False},
                    private_template=_private_template(key_usage),
                )
                # The pair shares the ID that a certificate filed later will carry.
                key_id = _key_id(_point_from_object(public))
                public[Attribute.ID] = key_id
                private[Attribute.ID] = key_id

            self._call(generate)
            return self._load(name)

    def import_private_key(
        self,
        name: str,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        key_usage: KeyUsage | None = None,
        certificate_der: bytes | None = None,
    ) -> Pkcs11Key:
        """Puts an existing key into the token as a sensitive, unextractable object."""
        private_key = check_private_key(private_key, name)
        public = private_key.public_key()
        info = KeyInfo(name, key_usage=key_usage)
        if certificate_der is not None:
            info, _ = info_with_certificate(info, certificate_der, public)
        with self._lock:
            existing = self._existing(name)
            if existing is not None:
                if existing.info.has_private_key:
                    raise DuplicateKey(name)
                if not same_public_key(existing.public_key(), public):
                    raise InvalidKeyMaterial(name, "the certificate does not certify this key")
                if certificate_der not in (None, existing.certificate_der):
                    raise DuplicateKey(name)
                certificate_der = None
                info = KeyInfo(name, key_usage=existing.info.key_usage or info.key_usage)
            point = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            key_id = _key_id(point)
            scalar = private_key.private_numbers().private_value.to_bytes(32, "big")
            private_attributes = {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.KEY_TYPE: KeyType.EC,
                Attribute.EC_PARAMS: _P256_PARAMS,
                Attribute.VALUE: scalar,
                Attribute.LABEL: name,
                Attribute.ID: key_id,
                **_private_template(info.key_usage),
            }
            public_attributes = {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: KeyType.EC,
                Attribute.EC_PARAMS: _P256_PARAMS,
                Attribute.EC_POINT: OctetString(point).dump(),
                Attribute.LABEL: name,
                Attribute.ID: key_id,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: False,
                Attribute.VERIFY: info.key_usage is not KeyUsage.KEY_AGREEMENT,
            }
            self._call(lambda: self._session.create_object(private_attributes))
            self._call(lambda: self._session.create_object(public_attributes))
            if certificate_der is not None:
                self._create_certificate(name, key_id, certificate_der)
            return self._load(name)

    def add_certificate(self, name: str, certificate_der: bytes) -> Pkcs11Key:
        """A CKO_CERTIFICATE with the key's label (checked against it), or on its own."""
        with self._lock:
            existing = self._existing(name)
            key_id = b""
            if existing is not None:
                if existing.certificate_der is not None:
                    if existing.certificate_der == certificate_der:
                        return existing
                    raise DuplicateKey(name)
                info_with_certificate(existing.info, certificate_der, existing.public_key())
                key_id = _key_id(
                    existing.public_key().public_bytes(
                        Encoding.X962, PublicFormat.UncompressedPoint
                    )
                )
            else:
                _, certified = info_with_certificate(
                    KeyInfo(name, has_private_key=False), certificate_der, None
                )
                key_id = _key_id(
                    certified.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
                )
            self._create_certificate(name, key_id, certificate_der)
            return self._load(name)

    def _create_certificate(self, name: str, key_id: bytes, certificate_der: bytes) -> None:
        facts = read_certificate(certificate_der, name)
        attributes = {
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.VALUE: certificate_der,
            Attribute.SUBJECT: facts.subject_der,
            Attribute.LABEL: name,
            Attribute.ID: key_id,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
        }
        self._call(lambda: self._session.create_object(attributes))

    def _existing(self, name: str) -> Pkcs11Key | None:
        try:
            return self._load(name)
        except KeyNotFound:
            return None

    def _require_absent(self, name: str) -> None:
        if self._existing(name) is not None:
            raise DuplicateKey(name)

    def _call(self, operation: Callable[[], _T]) -> _T:
        """Runs one token operation under the lock, mapping PKCS#11 errors to TokenError."""
        with self._lock:
            if self._closed:
                raise TokenError(TokenFailure.SESSION_CLOSED, "the store was closed")
            try:
                return operation()
            except (p11.SessionClosed, p11.SessionHandleInvalid) as exc:
                raise TokenError(TokenFailure.SESSION_CLOSED, type(exc).__name__) from None
            except p11.PKCS11Error as exc:
                detail = f"{type(exc).__name__} {exc}".strip()
                raise TokenError(TokenFailure.OPERATION_FAILED, detail) from None


def _is_entry_object(obj: Any) -> bool:
    """P-256 EC keys and X.509 certificates are entries; other objects are not."""
    if obj.object_class is ObjectClass.CERTIFICATE:
        return bool(obj[Attribute.CERTIFICATE_TYPE] == CertificateType.X_509)
    if obj.object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
        return bool(
            obj[Attribute.KEY_TYPE] == KeyType.EC
            and bytes(obj[Attribute.EC_PARAMS]) == _P256_PARAMS
        )
    return False


def _usage_from_flags(private: Any) -> KeyUsage | None:
    sign, derive = bool(private[Attribute.SIGN]), bool(private[Attribute.DERIVE])
    if sign and not derive:
        return KeyUsage.DIGITAL_SIGNATURE
    if derive and not sign:
        return KeyUsage.KEY_AGREEMENT
    return None


def _public_from_object(public: Any) -> ec.EllipticCurvePublicKey | None:
    try:
        point = _point_from_object(public)
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return None


def _point_from_object(public: Any) -> bytes:
    encoded = bytes(public[Attribute.EC_POINT])
    # PKCS#11 stores CKA_EC_POINT as a DER OCTET STRING; some tokens store it bare.
    if len(encoded) == 65 and encoded[0] == 0x04:
        return encoded
    return bytes(OctetString.load(encoded).native)


def _capabilities(key_usage: KeyUsage | None) -> MechanismFlag:
    if key_usage is KeyUsage.DIGITAL_SIGNATURE:
        return MechanismFlag.SIGN | MechanismFlag.VERIFY
    if key_usage is KeyUsage.KEY_AGREEMENT:
        return MechanismFlag.DERIVE
    return MechanismFlag.SIGN | MechanismFlag.VERIFY | MechanismFlag.DERIVE


def _private_template(key_usage: KeyUsage | None) -> dict[Attribute, Any]:
    # Custody: the private value never leaves the token (module docstring).
    return {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: key_usage is not KeyUsage.KEY_AGREEMENT,
        Attribute.DERIVE: key_usage is not KeyUsage.DIGITAL_SIGNATURE,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
    }


def _key_id(point: bytes) -> bytes:
    # CKA_ID as the SHA-1 of the public point, the convention of OpenSC and others.
    return hashlib.sha1(point, usedforsecurity=False).digest()
