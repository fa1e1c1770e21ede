"""Keys and small adapters for the GBCS tests.

The ZAZ1 and device keys come from the reference folder through
tests/reference.py; the adapters implement the DigestSigner and KeyAgreement
protocols over `cryptography` keys, as openecos.keys' software store does.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from openecos.eui import Eui64
from tests.reference import device_certificate_pem, zaz1_entry

DEVICE = Eui64.parse("00DB1234567890A0")
"""The RTDS test meter whose certificates are in reference/keystore/devices/."""


class SoftwareSigner:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key

    def sign_digest(self, digest: bytes) -> bytes:
        der = self.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class SoftwareKeyAgreement:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        return self.key.exchange(ec.ECDH(), peer_public_key)


def fresh_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def zaz1_certificate(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(zaz1_entry(name)["certificate"].encode())


def zaz1_public_key(name: str) -> ec.EllipticCurvePublicKey:
    key = zaz1_certificate(name).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def zaz1_private_key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(zaz1_entry(name)["privateKey"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def device_public_key(usage: str) -> ec.EllipticCurvePublicKey:
    key = x509.load_pem_x509_certificate(device_certificate_pem(usage)).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def subject_key_identifier(certificate: x509.Certificate) -> bytes:
    return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
