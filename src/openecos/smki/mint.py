"""Minting certificates with the SMKI profile, byte by byte.

Theory of operation: ``mint_certificate`` encodes a TBSCertificate itself,
so string types, extension order and criticality are exactly those of
docs/gbcs-cs02b.md §7, then signs it with `cryptography` (ecdsa-with-SHA256)
and returns the parsed view. It is the low-level primitive: every field is the
caller's, including ones that break the profile, which the tests of path
validation need. ``openecos.smki.testpki`` builds the safe, profiled API on it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import RemotePartyRole
from openecos.smki import _der
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.extensions import (
    OID_AUTHORITY_KEY_IDENTIFIER,
    OID_BASIC_CONSTRAINTS,
    OID_CERTIFICATE_POLICIES,
    OID_HARDWARE_MODULE_NAME,
    OID_KEY_USAGE,
    OID_SUBJECT_ALT_NAME,
    OID_SUBJECT_KEY_IDENTIFIER,
    Extension,
    X509KeyUsage,
    subject_key_identifier_method2,
)
from openecos.smki.names import (
    OID_COMMON_NAME,
    OID_ORGANIZATIONAL_UNIT,
    OID_X500_UNIQUE_IDENTIFIER,
    DistinguishedName,
)

# The test PKI's own OIDs: configuration for path validation, never the DCC's arcs.
_TEST_ARC = "2.25.1411715530770423547878152973072183224"  # X.667 UUID arc of this project
TEST_PKI_ORGANISATION_POLICY = f"{_TEST_ARC}.1.2.1.4"
TEST_PKI_DEVICE_POLICY = f"{_TEST_ARC}.2.2.1.4"
TEST_PKI_HARDWARE_TYPE = f"{_TEST_ARC}.1.2.2.1"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_ALGORITHM = _der.sequence(_der.oid(ECDSA_WITH_SHA256))


def new_serial() -> int:
    """16 random bytes, positive and of full length (gbcs-cs02b §7.1)."""
    raw = bytearray(secrets.token_bytes(16))
    raw[0] = (raw[0] & 0x7F) or 0x01
    return int.from_bytes(raw, "big")


def organisation_subject(
    role: RemotePartyRole, eui: Eui64, common_name: str | None = None
) -> DistinguishedName:
    """``[CN], OU=<role hex>, x500UniqueIdentifier=<EUI>``, in this DER order (§7.1)."""
    attributes: list[tuple[str, int, bytes]] = []
    if common_name is not None:
        attributes.append((OID_COMMON_NAME, _der.UTF8_STRING, common_name.encode()))
    attributes.append((OID_ORGANIZATIONAL_UNIT, _der.UTF8_STRING, role.ou.encode()))
    attributes.append((OID_X500_UNIQUE_IDENTIFIER, _der.BIT_STRING, b"\x00" + eui.value))
    return DistinguishedName.build(*attributes)


def ca_subject(common_name: str, role: RemotePartyRole | None) -> DistinguishedName:
    """``OU=<role>, CN=<name>`` in PrintableString, as the Z1 CA (§7.2)."""
    attributes: list[tuple[str, int, bytes]] = []
    if role is not None:
        attributes.append((OID_ORGANIZATIONAL_UNIT, _der.PRINTABLE_STRING, role.ou.encode()))
    attributes.append((OID_COMMON_NAME, _der.PRINTABLE_STRING, common_name.encode("ascii")))
    return DistinguishedName.build(*attributes)


def _time(moment: datetime) -> bytes:
    # RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    moment = moment.astimezone(UTC)
    if moment.year < 2050:
        return _der.encode(_der.UTC_TIME, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _der.encode(_der.GENERALIZED_TIME, f"{moment:%Y%m%d%H%M%S}Z".encode())


def _extension(oid: str, critical: bool, value: bytes) -> bytes:
    flag = _der.boolean(True) if critical else b""
    return _der.sequence(_der.oid(oid), flag, _der.octet_string(value))


def hardware_module_name(device: Eui64, hardware_type: str = TEST_PKI_HARDWARE_TYPE) -> bytes:
    """GeneralNames with the otherName hardwareModuleName of RFC 4108 §5 (§7.3)."""
    module = _der.sequence(_der.oid(hardware_type), _der.octet_string(device.value))
    other_name = _der.encode(0xA0, _der.oid(OID_HARDWARE_MODULE_NAME) + _der.encode(0xA0, module))
    return _der.sequence(other_name)


def mint_certificate(
    *,
    subject: DistinguishedName,
    issuer_name: DistinguishedName,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    not_after: datetime,
    key_usages: Iterable[X509KeyUsage],
    policies: Sequence[str],
    authority_key_identifier: bytes | None,
    ca_path_length: int | None = None,
    is_ca: bool = False,
    device: Eui64 | None = None,
    serial: int | None = None,
    extra_extensions: Sequence[Extension] = (),
) -> SmkiCertificate:
    """The low-level minting primitive: every field is the caller's choice.

    It follows the SMKI extension order (keyUsage, basicConstraints, SKI,
    subjectAltName, certificatePolicies, AKI) and lets tests break the profile
    on purpose (``extra_extensions``, no policies, a foreign issuer name).
    """
    point = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = {usage.bit for usage in key_usages}
    extensions = [_extension(OID_KEY_USAGE, True, _der.named_bits(bits))]
    if is_ca:
        constraint = b"" if ca_path_length is None else _der.integer(ca_path_length)
        extensions.append(
            _extension(OID_BASIC_CONSTRAINTS, True, _der.sequence(_der.boolean(True), constraint))
        )
    extensions.append(
        _extension(
            OID_SUBJECT_KEY_IDENTIFIER,
            False,
            _der.octet_string(subject_key_identifier_method2(point)),
        )
    )
    if device is not None:
        extensions.append(_extension(OID_SUBJECT_ALT_NAME, True, hardware_module_name(device)))
    if policies:
        infos = _der.sequence(*(_der.sequence(_der.oid(p)) for p in policies))
        extensions.append(_extension(OID_CERTIFICATE_POLICIES, True, infos))
    if authority_key_identifier is not None:
        aki = _der.sequence(_der.encode(0x80, authority_key_identifier))
        extensions.append(_extension(OID_AUTHORITY_KEY_IDENTIFIER, False, aki))
    for extra in extra_extensions:
        extensions.append(_extension(extra.oid, extra.critical, extra.value))

    tbs = _der.sequence(
        _der.encode(0xA0, _der.integer(2)),  # v3
        _der.integer(new_serial() if serial is None else serial),
        _ALGORITHM,
        issuer_name.der,
        _der.sequence(_time(not_before), _time(not_after)),
        subject.der,
        spki,
        _der.encode(0xA3, _der.sequence(*extensions)),
    )
    signature = signing_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return SmkiCertificate.from_der(_der.sequence(tbs, _ALGORITHM, _der.bit_string(signature)))


def new_key_pair() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A fresh P-256 key and its unencrypted PKCS#8 DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key, der
