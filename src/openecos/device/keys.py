"""Where a simulated meter's own private keys come from.

Theory of operation. A meter signs its responses and alerts with its
digital-signature key and verifies the ACB's GMAC with its key-agreement key
(docs/gbcs-cs02b.md §3). Those keys are *not* part of :class:`MeterState`:
a state is a small value copied on every transition and a million of them
are held at once. Instead the shared :class:`openecos.device.MeterProfile`
holds a :class:`DeviceKeys` source that yields a signer and a key agreement
for a device EUI when a message is handled.

Two sources:

* :class:`DerivedDeviceKeys`: each device's two private scalars are derived
  from one seed and the EUI (SHA-256, reduced mod n). Zero bytes per meter;
  costs two EC scalar multiplications per message (deriving the key computes
  its public point) on top of the protocol's own crypto. The trade-off: the
  seed is every meter's key, which is right for a simulator and never for
  anything else; and the keys are reproducible, so a test or the CoS side can
  compute a device's KA public key from the seed without a certificate store.
* :class:`DeviceKeyTable`: explicit per-device objects with ``sign_digest`` /
  ``exchange`` (an ``openecos.keys`` handle, a test adapter); memory grows with
  the table, so it suits a handful of meters.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from openecos.errors import OpenEcosError
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.gbcs.security import DigestSigner, KeyAgreement

# The order n of the P-256 group (SEC 2 §2.4.2).
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


class UnknownDevice(OpenEcosError, KeyError):
    """A key source that has no keys for this device."""


class DeviceKeys(Protocol):
    """The meter's own keys, looked up by its EUI when a message is handled."""

    def signer(self, device: Eui64) -> DigestSigner: ...

    def key_agreement(self, device: Eui64) -> KeyAgreement: ...


class DeviceKey:
    """A P-256 private key used as a device's DS or KA key (``sign_digest`` and ``exchange``)."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign_digest(self, digest: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(digest, _PREHASHED))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        return self._key.exchange(ec.ECDH(), peer_public_key)


class DerivedDeviceKeys:
    """Per-device keys derived from a seed; see the module docstring for the trade-off."""

    __slots__ = ("_cache", "_cache_size", "_seed")

    def __init__(self, seed: bytes, *, cache_size: int = 256) -> None:
        self._seed = bytes(seed)
        self._cache: OrderedDict[tuple[bytes, KeyUsage], DeviceKey] = OrderedDict()
        self._cache_size = cache_size

    def key(self, device: Eui64, usage: KeyUsage) -> DeviceKey:
        """The device's DS or KA key (recently used ones are kept, up to ``cache_size``)."""
        slot = (device.value, usage)
        found = self._cache.get(slot)
        if found is not None:
            self._cache.move_to_end(slot)
            return found
        digest = hashlib.sha256(
            b"openecos simulated meter key\x00" + self._seed + usage.value.encode() + device.value
        ).digest()
        scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
        key = DeviceKey(ec.derive_private_key(scalar, ec.SECP256R1()))
        self._cache[slot] = key
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return key

    def public_key(self, device: Eui64, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        return self.key(device, usage).public_key()

    def signer(self, device: Eui64) -> DigestSigner:
        return self.key(device, KeyUsage.DIGITAL_SIGNATURE)

    def key_agreement(self, device: Eui64) -> KeyAgreement:
        return self.key(device, KeyUsage.KEY_AGREEMENT)


class DeviceKeyTable:
    """Explicit keys per device: ``table.add(device, signer=..., key_agreement=...)``."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[Eui64, tuple[DigestSigner, KeyAgreement]] = {}

    def add(self, device: Eui64, *, signer: DigestSigner, key_agreement: KeyAgreement) -> None:
        self._keys[device] = (signer, key_agreement)

    def __contains__(self, device: object) -> bool:
        return device in self._keys

    def _get(self, device: Eui64) -> tuple[DigestSigner, KeyAgreement]:
        try:
            return self._keys[device]
        except KeyError:
            raise UnknownDevice(f"no keys for device {device}") from None

    def signer(self, device: Eui64) -> DigestSigner:
        return self._get(device)[0]

    def key_agreement(self, device: Eui64) -> KeyAgreement:
        return self._get(device)[1]
