"""The key-custody error family.

Every failure of :mod:`openecos.keys` is a :class:`KeyStoreError`. Each class
carries what a caller needs to act on it (the key name, the operation that was
refused, the source that could not be read, the token failure) rather than a
message alone. Nothing in this family ever carries private key material.
"""

from __future__ import annotations

from enum import StrEnum

from openecos.errors import OpenEcosError
from openecos.gbcs.codes import KeyUsage


class KeyOperation(StrEnum):
    """What a caller asked a key to do."""

    SIGN = "sign"
    EXCHANGE = "exchange"


class TokenFailure(StrEnum):
    """Why a PKCS#11 token could not be used."""

    CONFIGURATION = "configuration"
    MODULE_UNAVAILABLE = "module-unavailable"
    TOKEN_NOT_FOUND = "token-not-found"
    PIN_INCORRECT = "pin-incorrect"
    PIN_LOCKED = "pin-locked"
    SESSION_CLOSED = "session-closed"
    OPERATION_FAILED = "operation-failed"


class KeyStoreError(OpenEcosError):
    """Base class of every key-custody error."""


class KeyNotFound(KeyStoreError, LookupError):
    """No key answers to the name or to the (EUI, key usage, role) criteria."""

    def __init__(self, criteria: str) -> None:
        super().__init__(f"no key for {criteria}")
        self.criteria = criteria


class AmbiguousKey(KeyStoreError, LookupError):
    """More than one key answers where the caller asked for exactly one."""

    def __init__(self, criteria: str, names: tuple[str, ...]) -> None:
        super().__init__(f"{len(names)} keys for {criteria}: {', '.join(names)}")
        self.criteria = criteria
        self.names = names


class DuplicateKey(KeyStoreError):
    """A key with this name already holds a private key."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a key named {name!r} already exists")
        self.name = name


class WrongKeyUsage(KeyStoreError):
    """The key's usage forbids the operation (SMKI: one usage per key)."""

    def __init__(self, name: str, operation: KeyOperation, key_usage: KeyUsage | None) -> None:
        usage = key_usage.value if key_usage is not None else "keyCertSign"
        super().__init__(f"key {name!r} is a {usage} key and may not {operation.value}")
        self.name = name
        self.operation = operation
        self.key_usage = key_usage


class PrivateKeyMissing(KeyStoreError):
    """The entry is a certificate only: it serves verification, not signing."""

    def __init__(self, name: str, operation: KeyOperation) -> None:
        super().__init__(f"{name!r} has a certificate but no private key; cannot {operation.value}")
        self.name = name
        self.operation = operation


class InvalidKeyMaterial(KeyStoreError, ValueError):
    """A key, certificate or keystore source that cannot be used, and why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class InvalidDigest(KeyStoreError, ValueError):
    """``sign_digest`` takes exactly the 32 bytes of a SHA-256 digest."""

    def __init__(self, length: int) -> None:
        super().__init__(f"a SHA-256 digest is 32 bytes, got {length}")
        self.length = length


class InvalidPeerKey(KeyStoreError, ValueError):
    """``exchange`` takes a P-256 public key."""


class MalformedSignature(KeyStoreError, ValueError):
    """A signature that is not 64 bytes of r‖s (or not a DER ECDSA-Sig-Value)."""


class TokenError(KeyStoreError):
    """A PKCS#11 module, token, login or operation failed."""

    def __init__(self, reason: TokenFailure, detail: str) -> None:
        super().__init__(f"PKCS#11 {reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
