"""What a key store needs to know about a certificate, and no more.

A store files a certificate next to its key so that the key can be found by
(entity EUI, key usage, role) and so that certificate-only entries can serve
signature verification. This module reads just those facts from the DER:
serial number, keyUsage, the role from the subject OU, the EUI-64 from
``x500UniqueIdentifier`` (organisation certificates) or from the
``hardwareModuleName`` subject alternative name (device certificates), and the
subject public key.

It reads with asn1crypto, not ``cryptography``: some published SMKI test
certificates (the ZAZ1 ``mdr-*`` pair, docs/duis-xmldsig-smki.md §3.2) encode
ecdsa-with-SHA256 with NULL parameters, which ``cryptography`` refuses; their
keys are still good. Profile checks, path validation and anything that trusts
a certificate belong to :mod:`openecos.smki`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from asn1crypto import core, parser, pem, x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from openecos.eui import Eui64, InvalidEui
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.keys.errors import InvalidKeyMaterial

# RFC 4108 hardwareModuleName, the SAN otherName that carries a device's EUI-64.
_HARDWARE_MODULE_NAME = "1.3.6.1.5.5.7.8.4"


class _HardwareModuleName(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields: ClassVar[list[tuple[str, type]]] = [
        ("hw_type", core.ObjectIdentifier),
        ("hw_serial_num", core.OctetString),
    ]


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """The facts a store files under; ``certificate_authority`` for keyCertSign."""

    serial: int
    key_usage: KeyUsage | None
    certificate_authority: bool
    eui: Eui64 | None
    role: RemotePartyRole | None
    public_key: ec.EllipticCurvePublicKey = field(repr=False, compare=False)
    subject_der: bytes = field(repr=False)


def certificate_der(data: bytes, source: str = "certificate") -> bytes:
    """The DER of one certificate given as PEM or DER bytes."""
    if pem.detect(data):
        try:
            kind, _, der = pem.unarmor(data)
        except ValueError as exc:
            raise InvalidKeyMaterial(source, f"malformed PEM: {exc}") from None
        if kind != "CERTIFICATE":
            raise InvalidKeyMaterial(source, f"expected a CERTIFICATE, found {kind}")
        return bytes(der)
    return data


def read_certificate(der: bytes, source: str = "certificate") -> CertificateFacts:
    """Reads the filing facts of a P-256 certificate; raises InvalidKeyMaterial."""
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        serial = int(tbs["serial_number"].native)
        spki = tbs["subject_public_key_info"].dump()
        usages = cert.key_usage_value.native if cert.key_usage_value is not None else set()
        subject = tbs["subject"]
        ou, unique_id = _subject_ou_and_unique_id(subject)
        hardware_eui = _hardware_module_eui(cert)
        subject_der = subject.dump()
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidKeyMaterial(source, f"not a readable X.509 certificate: {exc}") from None
    try:
        public_key = load_der_public_key(spki)
    except ValueError as exc:
        raise InvalidKeyMaterial(source, f"unreadable subject public key: {exc}") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise InvalidKeyMaterial(source, "the subject public key is not P-256")
    return CertificateFacts(
        serial=serial,
        key_usage=_key_usage(usages),
        certificate_authority="key_cert_sign" in usages,
        eui=_eui(unique_id, source) if unique_id is not None else hardware_eui,
        role=_role(ou),
        public_key=public_key,
        subject_der=subject_der,
    )


def _key_usage(usages: set[str]) -> KeyUsage | None:
    # SMKI end-entity certificates carry exactly one of these (docs §3.1).
    if usages == {"digital_signature"}:
        return KeyUsage.DIGITAL_SIGNATURE
    if usages == {"key_agreement"}:
        return KeyUsage.KEY_AGREEMENT
    return None


def _subject_ou_and_unique_id(subject: x509.Name) -> tuple[str | None, bytes | None]:
    ou: str | None = None
    unique_id: bytes | None = None
    for rdn in subject.chosen:
        for attribute in rdn:
            oid = attribute["type"].dotted
            if oid == "2.5.4.11":
                ou = str(attribute["value"].native)
            elif oid == "2.5.4.45":
                # x500UniqueIdentifier is a BIT STRING of the 8 EUI bytes.
                unique_id = bytes(attribute["value"].native)
    return ou, unique_id


def _hardware_module_eui(cert: x509.Certificate) -> Eui64 | None:
    names = cert.subject_alt_name_value
    if names is None:
        return None
    for name in names:
        if name.name == "other_name" and name.chosen["type_id"].dotted == _HARDWARE_MODULE_NAME:
            # otherName value is [0] EXPLICIT; its contents are the SEQUENCE.
            encoded = name.chosen["value"].dump()
            _, _, tag, _, contents, _ = parser.parse(encoded)
            inner = _HardwareModuleName.load(contents if tag == 0 else encoded)
            serial = bytes(inner["hw_serial_num"].native)
            if len(serial) == 8:
                return Eui64(serial)
    return None


def _eui(value: bytes, source: str) -> Eui64:
    try:
        return Eui64(value)
    except InvalidEui:
        raise InvalidKeyMaterial(
            source, f"x500UniqueIdentifier is not an EUI-64: {value.hex()}"
        ) from None


def _role(ou: str | None) -> RemotePartyRole | None:
    # SMKI organisation certificates spell the RemotePartyRole as two hex digits.
    if ou is None or len(ou) != 2:
        return None
    try:
        return RemotePartyRole(int(ou, 16))
    except ValueError:
        return None
