"""X.509 extensions as SMKI uses them (docs/gbcs-cs02b.md §7, RFC 5280 §4.2).

Theory of operation: the certificate view hands each extension's OID,
criticality and extnValue here; ``ExtensionFacts`` reads the six SMKI gives
meaning to (keyUsage, basicConstraints, SKI, AKI, certificatePolicies,
subjectAltName hardwareModuleName) and leaves the others unread, for path
validation to refuse if they are critical. Malformed values raise
``CertificateError``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from openecos.eui import Eui64
from openecos.smki import _der
from openecos.smki._der import DerError, Tlv
from openecos.smki.errors import CertificateError, CertificateProblem

OID_KEY_USAGE = "2.5.29.15"
OID_SUBJECT_KEY_IDENTIFIER = "2.5.29.14"
OID_SUBJECT_ALT_NAME = "2.5.29.17"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
OID_CERTIFICATE_POLICIES = "2.5.29.32"
OID_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35"
OID_HARDWARE_MODULE_NAME = "1.3.6.1.5.5.7.8.4"  # RFC 4108 id-on-hardwareModuleName


class X509KeyUsage(StrEnum):
    """The named bits of the X.509 keyUsage extension (RFC 5280 §4.2.1.3), by bit number."""

    DIGITAL_SIGNATURE = "digitalSignature"
    NON_REPUDIATION = "nonRepudiation"
    KEY_ENCIPHERMENT = "keyEncipherment"
    DATA_ENCIPHERMENT = "dataEncipherment"
    KEY_AGREEMENT = "keyAgreement"
    KEY_CERT_SIGN = "keyCertSign"
    CRL_SIGN = "cRLSign"
    ENCIPHER_ONLY = "encipherOnly"
    DECIPHER_ONLY = "decipherOnly"

    @property
    def bit(self) -> int:
        return _KEY_USAGE_BITS[self]


_KEY_USAGE_BITS = {usage: number for number, usage in enumerate(X509KeyUsage)}


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension as carried: OID, criticality and the extnValue content."""

    oid: str
    critical: bool
    value: bytes


def subject_key_identifier_method2(subject_public_key: bytes) -> bytes:
    """RFC 5280 §4.2.1.2 method 2, as SMKI uses it: 0x4 then the low 60 bits of SHA-1."""
    low = int.from_bytes(hashlib.sha1(subject_public_key).digest()[-8:], "big")
    return ((0x4 << 60) | (low & ((1 << 60) - 1))).to_bytes(8, "big")


class ExtensionFacts:
    """Reads the extensions SMKI gives meaning to; the rest are kept unread."""

    def __init__(self, extensions: tuple[Extension, ...]) -> None:
        self.key_usages: frozenset[X509KeyUsage] = frozenset()
        self.is_ca = False
        self.path_length: int | None = None
        self.subject_key_identifier: bytes | None = None
        self.authority_key_identifier: bytes | None = None
        self.policies: tuple[str, ...] = ()
        self.policies_critical: bool | None = None
        self.device_eui: Eui64 | None = None
        for ext in extensions:
            try:
                self._read(ext)
            except DerError as exc:
                raise CertificateError(
                    CertificateProblem.BAD_EXTENSION, f"{ext.oid}: {exc}"
                ) from None

    def _read(self, ext: Extension) -> None:
        value = _der.read_single(ext.value)
        if ext.oid == OID_KEY_USAGE:
            unused, octets = _der.decode_bit_string(value)
            bits = len(octets) * 8 - unused
            self.key_usages = frozenset(
                usage
                for usage in X509KeyUsage
                if usage.bit < bits and octets[usage.bit // 8] & (0x80 >> (usage.bit % 8))
            )
        elif ext.oid == OID_BASIC_CONSTRAINTS:
            for item in _der.sequence_items(value):
                if item.tag == _der.BOOLEAN:
                    self.is_ca = _der.decode_boolean(item)
                else:
                    self.path_length = _der.decode_integer(item)
                    if self.path_length < 0:
                        raise DerError("negative pathLenConstraint", item.offset)
        elif ext.oid == OID_SUBJECT_KEY_IDENTIFIER:
            self.subject_key_identifier = value.expect(_der.OCTET_STRING).content
        elif ext.oid == OID_AUTHORITY_KEY_IDENTIFIER:
            for item in _der.sequence_items(value):
                if item.tag == 0x80:  # [0] IMPLICIT KeyIdentifier
                    self.authority_key_identifier = item.content
        elif ext.oid == OID_CERTIFICATE_POLICIES:
            self.policies = tuple(_policy_identifier(info) for info in _der.sequence_items(value))
            self.policies_critical = ext.critical
        elif ext.oid == OID_SUBJECT_ALT_NAME:
            self.device_eui = hardware_module_name_eui(value)


def _policy_identifier(info: Tlv) -> str:
    """policyIdentifier of a PolicyInformation, which must not be empty (RFC 5280 §4.2.1.4)."""
    items = _der.sequence_items(info)
    if not items:
        raise DerError("empty PolicyInformation", info.offset)
    return _der.decode_oid(items[0])


def hardware_module_name_eui(san: Tlv) -> Eui64 | None:
    """hwSerialNum of otherName hardwareModuleName (RFC 4108 §5; gbcs-cs02b §7.3)."""
    for general_name in _der.sequence_items(san):
        if general_name.tag != 0xA0:  # [0] IMPLICIT OtherName
            continue
        items = list(general_name.children())
        if len(items) != 2 or _der.decode_oid(items[0]) != OID_HARDWARE_MODULE_NAME:
            continue
        explicit = list(items[1].expect(0xA0).children())
        if len(explicit) != 1:
            raise DerError("malformed otherName value", items[1].offset)
        module = _der.sequence_items(explicit[0])
        if len(module) != 2:
            raise DerError("HardwareModuleName is a pair", explicit[0].offset)
        _der.decode_oid(module[0])
        serial = module[1].expect(_der.OCTET_STRING).content
        if len(serial) != 8:
            raise CertificateError(CertificateProblem.BAD_DEVICE_ID, serial.hex())
        return Eui64(serial)
    return None


def read_extensions(element: Tlv) -> tuple[Extension, ...]:
    found: list[Extension] = []
    for ext in _der.sequence_items(element):
        items = _der.sequence_items(ext)
        if len(items) == 2:
            critical = False
        elif len(items) == 3:
            critical = _der.decode_boolean(items[1])
        else:
            raise DerError("Extension has two or three fields", ext.offset)
        oid = _der.decode_oid(items[0])
        if any(e.oid == oid for e in found):  # RFC 5280 §4.2
            raise CertificateError(CertificateProblem.BAD_EXTENSION, f"{oid} twice", ext.offset)
        found.append(Extension(oid, critical, items[-1].expect(_der.OCTET_STRING).content))
    return tuple(found)
