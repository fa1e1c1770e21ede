"""Fixtures for the key stores: a throwaway SoftHSM2 token and a hand-made test PKI.

The token fixture writes a softhsm2.conf in a tmp dir, points SOFTHSM2_CONF
at it, initialises a token with ``softhsm2-util`` and re-initialises the
PKCS#11 module so it sees the new token (SoftHSM reads its token directory
at C_Initialize). Where SoftHSM2 or the module is missing it skips locally and
fails in CI (OPENECOS_REQUIRE_SOFTHSM=1).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from tests.reference import missing

SOFTHSM_MODULE = os.environ.get("OPENECOS_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
USER_PIN = "1234"
SO_PIN = "5678"


@dataclass(frozen=True)
class SoftHsmToken:
    module: str
    label: str
    user_pin: str
    directory: Path


@pytest.fixture
def softhsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    util = shutil.which("softhsm2-util")
    if util is None:
        missing("SOFTHSM", "softhsm2-util not found on PATH")
    if not Path(SOFTHSM_MODULE).exists():
        missing("SOFTHSM", f"PKCS#11 module not found: {SOFTHSM_MODULE}")
    try:
        import pkcs11
    except ImportError as exc:
        missing("SOFTHSM", f"python-pkcs11 not importable: {exc}")
    directory = tmp_path / "softhsm"
    (directory / "tokens").mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    label = "openecos-test"
    assert util is not None
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--pin", USER_PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    # The module caches its token list from C_Initialize; start it afresh.
    pkcs11.lib(SOFTHSM_MODULE).reinitialize()
    return SoftHsmToken(SOFTHSM_MODULE, label, USER_PIN, directory)


@pytest.fixture
def token_store(softhsm_token: SoftHsmToken) -> Iterator[Any]:
    from openecos.keys import Pkcs11KeyStore

    with Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, softhsm_token.user_pin) as store:
        yield store


# -- a hand-made PKI in the openecos-test-pki/1 layout --------------------------------


@dataclass(frozen=True)
class MadeEntry:
    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def _name(ou: str | None, eui: bytes | None, cn: str | None = None) -> x509.Name:
    attributes = []
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if ou is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if eui is not None:
        # cryptography writes the value as the BIT STRING's content: 0 unused bits first.
        attributes.append(
            x509.NameAttribute(
                NameOID.X500_UNIQUE_IDENTIFIER,
                b"\x00" + eui,  # type: ignore[arg-type]  # bytes is right for a BIT STRING
                _type=_ASN1Type.BitString,
            )
        )
    return x509.Name(attributes)


def make_certificate(
    subject_key: ec.EllipticCurvePrivateKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ou: str | None,
    eui: bytes | None,
    usage: str,
    issuer: x509.Name | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    """An SMKI-shaped certificate: OU role, x500UniqueIdentifier EUI, one key usage."""
    subject = _name(ou, eui, cn="Test Root" if usage == "keyCertSign" else None)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(subject_key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=usage == "digitalSignature",
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=usage == "keyAgreement",
                key_cert_sign=usage == "keyCertSign",
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_certificate(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


SUPPLIER_EUI = "90B3D51F30010000"


@pytest.fixture
def make_pki(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, MadeEntry]]]:
    """Builds a root and a supplier's DS/KA pair (KA for the prepayment cell) on disk."""

    def build(
        mutate: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> tuple[Path, dict[str, MadeEntry]]:
        directory = tmp_path / "pki"
        (directory / "certs").mkdir(parents=True)
        (directory / "keys").mkdir()
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = make_certificate(root_key, root_key, ou="07", eui=None, usage="keyCertSign")
        made = {"test-root": MadeEntry("test-root", root_key, root)}
        for name, usage in (
            ("supplier-a-ds", "digitalSignature"),
            ("supplier-a-ka", "keyAgreement"),
        ):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = make_certificate(
                key,
                root_key,
                ou="02",
                eui=bytes.fromhex(SUPPLIER_EUI),
                usage=usage,
                issuer=root.subject,
            )
            made[name] = MadeEntry(name, key, cert)
        entries: list[dict[str, Any]] = []
        for name, entry in made.items():
            is_root = name == "test-root"
            (directory / "certs" / f"{name}.pem").write_bytes(pem_certificate(entry.certificate))
            (directory / "keys" / f"{name}.key.pem").write_bytes(pem_key(entry.key))
            entries.append(
                {
                    "name": name,
                    "kind": "root" if is_root else "organisation",
                    "eui": None if is_root else SUPPLIER_EUI,
                    "role": None if is_root else 2,
                    "key_usage": "keyCertSign"
                    if is_root
                    else ("digitalSignature" if name.endswith("-ds") else "keyAgreement"),
                    "cell_usage": None if is_root else (1 if name.endswith("-ka") else 0),
                    "serial": f"{entry.certificate.serial_number:X}",
                    "certificate": f"certs/{name}.pem",
                    # The root is published without its key, as a verifier would hold it.
                    "private_key": None if is_root else f"keys/{name}.key.pem",
                }
            )
        if mutate is not None:
            mutate(entries)
        index = {"format": "openecos-test-pki/1", "entries": entries}
        (directory / "pki.json").write_text(json.dumps(index, indent=1))
        return directory, made

    return build
