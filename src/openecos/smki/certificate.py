"""``SmkiCertificate``: a typed, read-only view of one SMKI certificate's DER.

Theory of operation: the DER is kept verbatim (CS02b copies certificates byte
for byte, docs/gbcs-cs02b.md §4) and walked once with the project's own DER
reader, because `cryptography` refuses some certificates of the public test
material (docs/duis-xmldsig-smki.md §3.2, the ZAZ1 ``mdr-*`` entries). The view
reads what SMKI gives meaning to (docs/gbcs-cs02b.md §7):

* the remote party role from the subject OU, two hex digits; the legacy
  decimal OU ``137`` of the pre-1.4.1 DSP XML-signing certificate is the one
  tolerated exception;
* the entity EUI-64 from x500UniqueIdentifier (a BIT STRING: the unused-bits
  octet is stripped), the device EUI-64 from the subjectAltName otherName
  hardwareModuleName;
* key usage, basicConstraints, key identifiers, policies, validity, key.

This module judges nothing about trust: that is ``openecos.smki.path``. It
raises :class:`CertificateError` for anything it cannot read, never another
exception type.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki import _der
from openecos.smki._der import DerError, Tlv
from openecos.smki.errors import CertificateError, CertificateProblem
from openecos.smki.extensions import (
    Extension,
    ExtensionFacts,
    X509KeyUsage,
    read_extensions,
)
from openecos.smki.names import (
    OID_ORGANIZATIONAL_UNIT,
    OID_X500_UNIQUE_IDENTIFIER,
    DistinguishedName,
)

_LEGACY_DSP_XML_SIGN_OU = "137"  # decimal OU of dsp-xml-sign-…-pre-1.4.1 (duis-xmldsig-smki §3.2)
_HEX_OU = re.compile(r"[0-9A-Fa-f]{2}")
_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]*?)\s*-----END CERTIFICATE-----"
)


@dataclass(frozen=True, slots=True)
class SmkiCertificate:
    """A certificate's DER and the SMKI facts read from it. Build with ``from_der``/``from_pem``."""

    der: bytes
    tbs_der: bytes  # the exact TBSCertificate bytes the issuer signed
    signature_algorithm: str  # dotted OID of the outer signatureAlgorithm
    signature: bytes  # the signatureValue content: a DER ECDSA-Sig-Value
    serial: int
    issuer: DistinguishedName
    subject: DistinguishedName
    not_before: datetime
    not_after: datetime
    public_key: EllipticCurvePublicKey
    subject_public_key: bytes  # the subjectPublicKey BIT STRING octets (the EC point)
    role: RemotePartyRole | None
    entity_eui: Eui64 | None
    device_eui: Eui64 | None
    key_usages: frozenset[X509KeyUsage]
    is_ca: bool
    path_length: int | None
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None
    policies: tuple[str, ...]
    policies_critical: bool | None  # None when there is no certificatePolicies extension
    extensions: tuple[Extension, ...]
    legacy_decimal_ou: bool = False

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_der(cls, der: bytes) -> SmkiCertificate:
        """Reads one DER certificate; raises :class:`CertificateError` if it cannot."""
        if not isinstance(der, bytes | bytearray | memoryview):
            raise CertificateError(CertificateProblem.MALFORMED_DER, "expected bytes")
        try:
            return _parse_once(bytes(der))
        except DerError as exc:
            raise CertificateError(
                CertificateProblem.MALFORMED_DER, str(exc).split(" (at")[0], exc.offset
            ) from None

    @classmethod
    def parse_cache_info(cls) -> str:
        """Hits and misses of the parse memo (for benchmarks and diagnostics)."""
        return str(_parse_once.cache_info())

    @classmethod
    def from_pem(cls, pem: bytes | str) -> SmkiCertificate:
        """Reads the first ``CERTIFICATE`` block of a PEM text."""
        found = load_pem_certificates(pem)
        if not found:
            raise CertificateError(CertificateProblem.NOT_PEM, "no CERTIFICATE block")
        return found[0]

    # --- derived facts ------------------------------------------------------------------

    @property
    def key_usage(self) -> KeyUsage | None:
        """The single SMKI end-entity usage, or ``None`` (a CA, or not single-purpose)."""
        if self.key_usages == {X509KeyUsage.DIGITAL_SIGNATURE}:
            return KeyUsage.DIGITAL_SIGNATURE
        if self.key_usages == {X509KeyUsage.KEY_AGREEMENT}:
            return KeyUsage.KEY_AGREEMENT
        return None

    @property
    def can_sign_certificates(self) -> bool:
        return X509KeyUsage.KEY_CERT_SIGN in self.key_usages

    @property
    def can_sign_crls(self) -> bool:
        return X509KeyUsage.CRL_SIGN in self.key_usages

    @property
    def is_device(self) -> bool:
        """A device certificate: identified by hardwareModuleName, empty subject (§7.3)."""
        return self.device_eui is not None

    @property
    def eui(self) -> Eui64 | None:
        """The entity EUI of an organisation certificate, else the device EUI."""
        return self.entity_eui if self.entity_eui is not None else self.device_eui

    @property
    def serial_hex(self) -> str:
        """Upper-case hex of the serial, two digits a byte (``71872BDB…``)."""
        width = max(1, (self.serial.bit_length() + 7) // 8)
        return self.serial.to_bytes(width, "big").hex().upper()

    def extension(self, oid: str) -> Extension | None:
        for ext in self.extensions:
            if ext.oid == oid:
                return ext
        return None

    def is_valid_at(self, when: datetime) -> bool:
        return self.not_before <= when <= self.not_after

    @property
    def pem(self) -> bytes:
        body = base64.encodebytes(self.der).replace(b"\n", b"")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return (
            b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"
        )

    def __repr__(self) -> str:
        return (
            f"SmkiCertificate(serial={self.serial_hex}, subject={self.subject!s:.60}, "
            f"issuer={self.issuer!s:.60}, role={self.role!r}, eui={self.eui!r}, "
            f"key_usage={sorted(self.key_usages)!r})"
        )


def load_pem_certificates(pem: bytes | str) -> tuple[SmkiCertificate, ...]:
    """Every ``CERTIFICATE`` block of a PEM text, in order."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else bytes(pem)
    found: list[SmkiCertificate] = []
    for match in _PEM_BLOCK.finditer(data):
        try:
            der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except (binascii.Error, ValueError):
            raise CertificateError(CertificateProblem.NOT_PEM, "bad base64 in PEM") from None
        found.append(SmkiCertificate.from_der(der))
    return tuple(found)


# --- parsing -------------------------------------------------------------------------------


# The same few certificates arrive again and again (a supplier's three in each of its
# 6.23s, the certification path in every command, each meter's own on each answer),
# and reading one here costs ~0.1 ms against ~0.01 ms for cryptography's C parser.
# A SmkiCertificate is a frozen value of immutable fields, so one parse can be shared;
# failures are not remembered (exceptions are never cached) and the memo is bounded.
@lru_cache(maxsize=8192)
def _parse_once(data: bytes) -> SmkiCertificate:
    return _parse(data)


def _parse(data: bytes) -> SmkiCertificate:
    certificate = _der.read_single(data)
    parts = _der.sequence_items(certificate)
    if len(parts) != 3:
        raise DerError("Certificate is a SEQUENCE of three", certificate.offset)
    tbs, outer_algorithm, signature_value = parts
    signature_algorithm = _algorithm_oid(outer_algorithm)
    unused, signature = _der.decode_bit_string(signature_value)
    if unused:
        raise DerError("signatureValue has unused bits", signature_value.offset)

    fields = _der.sequence_items(tbs)
    position = 0
    if fields and fields[0].tag == 0xA0:
        version_items = list(fields[0].children())
        if len(version_items) != 1:
            raise DerError("malformed version", fields[0].offset)
        version = _der.decode_integer(version_items[0])
        position = 1
    else:
        version = 0
    if version != 2:
        raise CertificateError(
            CertificateProblem.UNSUPPORTED_VERSION, f"version {version + 1}", tbs.offset
        )
    if len(fields) < position + 6:
        raise DerError("TBSCertificate is too short", tbs.offset)
    serial = _der.decode_integer(fields[position])
    _algorithm_oid(fields[position + 1])
    issuer = _name(fields[position + 2])
    not_before, not_after = _validity(fields[position + 3])
    subject = _name(fields[position + 4])
    spki = fields[position + 5].expect(_der.SEQUENCE)
    public_key, subject_public_key = _public_key(spki)
    extensions: tuple[Extension, ...] = ()
    for extra in fields[position + 6 :]:
        if extra.tag == 0xA3:
            inner = list(extra.children())
            if len(inner) != 1 or extensions:
                raise DerError("malformed extensions", extra.offset)
            extensions = read_extensions(inner[0])
        elif extra.tag not in (0x81, 0x82):  # issuer/subject unique IDs: ignored
            raise DerError(f"unexpected tag {extra.tag:#04x} in TBSCertificate", extra.offset)

    facts = ExtensionFacts(extensions)
    role, legacy = _role(subject)
    return SmkiCertificate(
        der=data,
        tbs_der=tbs.encoded,
        signature_algorithm=signature_algorithm,
        signature=signature,
        serial=serial,
        issuer=issuer,
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        public_key=public_key,
        subject_public_key=subject_public_key,
        role=role,
        entity_eui=_entity_eui(subject),
        device_eui=facts.device_eui,
        key_usages=facts.key_usages,
        is_ca=facts.is_ca,
        path_length=facts.path_length,
        subject_key_identifier=facts.subject_key_identifier,
        authority_key_identifier=facts.authority_key_identifier,
        policies=facts.policies,
        policies_critical=facts.policies_critical,
        extensions=extensions,
        legacy_decimal_ou=legacy,
    )


def _algorithm_oid(element: Tlv) -> str:
    items = _der.sequence_items(element)
    # ecdsa-with-SHA256 has no parameters (RFC 5758); the ZAZ1 mdr-* certificates carry
    # an explicit NULL, which is tolerated here (duis-xmldsig-smki.md §3.2).
    if not 1 <= len(items) <= 2:
        raise DerError("malformed AlgorithmIdentifier", element.offset)
    return _der.decode_oid(items[0])


def _name(element: Tlv) -> DistinguishedName:
    try:
        return DistinguishedName.from_tlv(element)
    except DerError as exc:
        raise CertificateError(CertificateProblem.BAD_NAME, str(exc), exc.offset) from None


def _time(element: Tlv) -> datetime:
    try:
        text = element.content.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    # RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY), GeneralizedTime with seconds.
    if element.tag == _der.UTC_TIME and len(text) == 13 and text[:12].isdigit() and text[12] == "Z":
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif not (element.tag == _der.GENERALIZED_TIME and len(text) == 15):
        raise CertificateError(CertificateProblem.BAD_TIME, repr(text), element.offset)
    if not (text[:14].isdigit() and text.isascii() and text[14] == "Z"):
        raise CertificateError(CertificateProblem.BAD_TIME, repr(text), element.offset)
    try:
        numbers = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
        year, month, day, hour, minute, second = (int(n) for n in numbers)
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise CertificateError(CertificateProblem.BAD_TIME, repr(text), element.offset) from None


def _validity(element: Tlv) -> tuple[datetime, datetime]:
    items = _der.sequence_items(element)
    if len(items) != 2:
        raise DerError("Validity is a pair of times", element.offset)
    return _time(items[0]), _time(items[1])


def _public_key(spki: Tlv) -> tuple[EllipticCurvePublicKey, bytes]:
    items = _der.sequence_items(spki)
    if len(items) != 2:
        raise DerError("SubjectPublicKeyInfo is a pair", spki.offset)
    _, point = _der.decode_bit_string(items[1])
    try:
        key = load_der_public_key(spki.encoded)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(CertificateProblem.UNSUPPORTED_KEY, str(exc), spki.offset) from None
    if not isinstance(key, EllipticCurvePublicKey):
        raise CertificateError(CertificateProblem.UNSUPPORTED_KEY, type(key).__name__, spki.offset)
    return key, point


def _role(subject: DistinguishedName) -> tuple[RemotePartyRole | None, bool]:
    found = subject.values(OID_ORGANIZATIONAL_UNIT)
    if not found:
        return None, False
    if len(found) > 1:
        raise CertificateError(CertificateProblem.BAD_ROLE, "more than one OU")
    text = found[0].text
    if text == _LEGACY_DSP_XML_SIGN_OU:
        return RemotePartyRole.DSP_XML_SIGN, True
    if text is None or not _HEX_OU.fullmatch(text):
        raise CertificateError(CertificateProblem.BAD_ROLE, f"OU {text!r}")
    try:
        return RemotePartyRole(int(text, 16)), False
    except ValueError:
        raise CertificateError(CertificateProblem.BAD_ROLE, f"unknown role OU {text}") from None


def _entity_eui(subject: DistinguishedName) -> Eui64 | None:
    found = subject.values(OID_X500_UNIQUE_IDENTIFIER)
    if not found:
        return None
    value = found[0]
    # duis-xmldsig-smki §3.1: BIT STRING, 0 unused bits, then the 8 EUI bytes.
    if len(found) > 1 or value.tag != _der.BIT_STRING or len(value.value) != 9 or value.value[0]:
        raise CertificateError(CertificateProblem.BAD_ENTITY_ID, value.value.hex())
    return Eui64(value.value[1:])
