"""Fixtures for the DUIS tests: the XSD set, a certificate store over the ZAZ1
keystore and the signing tool's PEMs, and freshly generated signing keys."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from openecos.duis import DuisSchema, PrivateKeySigner, SigningIdentity, issuer_of
from tests.reference import reference_path, zaz1_keystore

TEMPLATE_623 = {
    "immediate": "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML",
    "future-dated": "CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML",
    "cancellation": "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_REQUEST_DUIS.XML",
}
# The tool's PEMs beside the keystore (docs/duis-xmldsig-smki.md §3.2).
KEYSTORE_PEMS = (
    "Z1-accessControlBroker-dSPXmlSign.pem",
    "dsp-xml-sign-90B3D51F30000002-ds.pem",
    "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem",
)

Resolver = Callable[[str, int], bytes | None]


def template_623(kind: str) -> bytes:
    return reference_path("duis", "templates", TEMPLATE_623[kind]).read_bytes()


def sample(name: str) -> bytes:
    return reference_path("duis", "samples", name).read_bytes()


@pytest.fixture(scope="session")
def schema() -> DuisSchema:
    return DuisSchema.load(reference_path("duis", "xsd"))


def _zaz1_store() -> dict[tuple[str, int], bytes]:
    pems = [
        entry["certificate"].encode()
        for by_usage in zaz1_keystore().values()
        for by_serial in by_usage.values()
        for entry in by_serial.values()
    ]
    pems += [reference_path("keystore", name).read_bytes() for name in KEYSTORE_PEMS]
    store: dict[tuple[str, int], bytes] = {}
    for pem in pems:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            continue  # the mdr-* certificates (NULL ECDSA parameters, docs §3.2)
        der = cert.public_bytes(Encoding.DER)
        store[(issuer_of(der), cert.serial_number)] = der
    return store


@pytest.fixture(scope="session")
def zaz1_resolver() -> Resolver:
    store = _zaz1_store()
    return lambda issuer, serial: store.get((issuer, serial))


class SignerPki:
    """A throw-away signer certificate issued as SMKI does (OU role, EUI), per test session."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        issuer = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07"),
                x509.NameAttribute(NameOID.COMMON_NAME, "T1"),
            ]
        )
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "87")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(self.key, hashes.SHA256())
        )
        self.der = self.certificate.public_bytes(Encoding.DER)
        self.identity = SigningIdentity.for_certificate(PrivateKeySigner(self.key), self.der)

    def resolver(self, issuer: str, serial: int) -> bytes | None:
        if (issuer, serial) == (issuer_of(self.der), self.certificate.serial_number):
            return self.der
        return None


@pytest.fixture(scope="session")
def pki() -> SignerPki:
    return SignerPki()


def path_of(name: str) -> Path:
    return reference_path("duis", "samples", name)
