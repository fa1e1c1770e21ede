"""A test PKI with the SMKI certificate profile: root, CAs, parties and devices.

Theory of operation: minting is pure. Every function takes values and returns
certificates and private keys as values (``PkiEntry``); nothing is written
until ``openecos.smki.testpki_files.write_test_pki`` is called, and no clock is
read: validity starts at ``TestPki.valid_from`` unless the caller says
otherwise. The TBSCertificate is encoded here byte by byte so that the profile
of docs/gbcs-cs02b.md §7 is followed exactly (attribute string types, the
order of extensions, criticality), then signed with `cryptography`:

* 16-byte positive serial; ecdsa-with-SHA256; P-256 keys;
* CAs: subject ``OU=<role>, CN=<name>`` in PrintableString, critical
  basicConstraints and keyUsage keyCertSign+cRLSign;
* organisation certificates: subject ``[CN], OU=<role hex>, x500UniqueIdentifier``
  (UTF8String, BIT STRING), critical single-purpose keyUsage, 8-byte SKI by
  RFC 5280 method 2, critical certificatePolicies, AKI; 10 years;
* device certificates: empty subject, critical subjectAltName otherName
  hardwareModuleName, notAfter 99991231235959Z.

The policy OIDs are this project's own (a UUID arc, X.667), so nothing minted
here can pass for a DCC certificate. The CA private keys are held as objects
in the entries, so minting thousands of device certificates reuses them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.smki import _der
from openecos.smki.certificate import (
    OID_AUTHORITY_KEY_IDENTIFIER,
    OID_BASIC_CONSTRAINTS,
    OID_CERTIFICATE_POLICIES,
    OID_HARDWARE_MODULE_NAME,
    OID_KEY_USAGE,
    OID_SUBJECT_ALT_NAME,
    OID_SUBJECT_KEY_IDENTIFIER,
    Extension,
    SmkiCertificate,
    X509KeyUsage,
    subject_key_identifier_method2,
)
from openecos.smki.errors import KeystoreError
from openecos.smki.names import (
    OID_COMMON_NAME,
    OID_ORGANIZATIONAL_UNIT,
    OID_X500_UNIQUE_IDENTIFIER,
    DistinguishedName,
)

_TEST_ARC = "2.25.1411715530770423547878152973072183224"  # X.667 UUID arc of this project
TEST_PKI_ORGANISATION_POLICY = f"{_TEST_ARC}.1.2.1.4"
TEST_PKI_DEVICE_POLICY = f"{_TEST_ARC}.2.2.1.4"
TEST_PKI_HARDWARE_TYPE = f"{_TEST_ARC}.1.2.2.1"

ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_ALGORITHM = _der.sequence(_der.oid(ECDSA_WITH_SHA256))
DEFAULT_VALID_FROM = datetime(2025, 1, 1, tzinfo=UTC)
DEVICE_NOT_AFTER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # gbcs-cs02b §7.3
ORGANISATION_VALIDITY = timedelta(days=3652)  # 10 years, as the ZAZ1 GBCS-role certificates
CA_VALIDITY = timedelta(days=9131)  # 25 years, as Z1 (2015-10-29..2040-10-28)


class PkiEntryKind(StrEnum):
    ROOT = "root"
    CA = "ca"
    ORGANISATION = "organisation"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class PkiEntry:
    """One certificate of the test PKI with its private key (PKCS#8 DER) and its name."""

    name: str
    kind: PkiEntryKind
    certificate: SmkiCertificate
    private_key_der: bytes | None
    cell_usage: CellUsage | None = None
    key: ec.EllipticCurvePrivateKey | None = field(default=None, compare=False, repr=False)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        if self.key is not None:
            return self.key
        if self.private_key_der is None:
            raise KeystoreError(f"{self.name}: no private key")
        key = serialization.load_der_private_key(self.private_key_der, None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeystoreError(f"{self.name}: not an EC private key")
        return key

    @property
    def private_key_pem(self) -> bytes | None:
        if self.private_key_der is None:
            return None
        return self.private_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def eui(self) -> Eui64 | None:
        return self.certificate.eui

    @property
    def role(self) -> RemotePartyRole | None:
        return self.certificate.role

    @property
    def key_usage_name(self) -> str:
        """``digitalSignature``, ``keyAgreement`` or, for CAs, ``keyCertSign``."""
        if self.certificate.can_sign_certificates:
            return X509KeyUsage.KEY_CERT_SIGN.value
        usage = self.certificate.key_usage
        if usage is None:
            raise KeystoreError(f"{self.name}: not a single-purpose certificate")
        return usage.value


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


def _new_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key, der


def _issue_ca(
    name: str,
    subject: DistinguishedName,
    *,
    issuer: PkiEntry | None,
    path_length: int | None,
    policies: Sequence[str],
    valid_from: datetime,
) -> PkiEntry:
    key, key_der = _new_key()
    signer_key = key if issuer is None else issuer.private_key()
    certificate = mint_certificate(
        subject=subject,
        issuer_name=subject if issuer is None else issuer.certificate.subject,
        public_key=key.public_key(),
        signing_key=signer_key,
        not_before=valid_from,
        not_after=valid_from + CA_VALIDITY,
        key_usages=(X509KeyUsage.KEY_CERT_SIGN, X509KeyUsage.CRL_SIGN),
        policies=policies,
        authority_key_identifier=(
            None if issuer is None else issuer.certificate.subject_key_identifier
        ),
        is_ca=True,
        ca_path_length=path_length,
    )
    kind = PkiEntryKind.ROOT if issuer is None else PkiEntryKind.CA
    return PkiEntry(name, kind, certificate, key_der, None, key)


_USAGE_BITS = {
    KeyUsage.DIGITAL_SIGNATURE: X509KeyUsage.DIGITAL_SIGNATURE,
    KeyUsage.KEY_AGREEMENT: X509KeyUsage.KEY_AGREEMENT,
}


@dataclass(frozen=True, slots=True)
class TestPki:
    """A root, an organisation CA (OU=07, pathLen 0), a device CA and issued entries.

    Values only: ``issue_*`` return new entries and ``with_entries`` a new
    ``TestPki``; nothing here mutates.
    """

    __test__ = False  # not a pytest test class, despite the name

    root: PkiEntry
    organisation_ca: PkiEntry
    device_ca: PkiEntry
    entries: tuple[PkiEntry, ...] = ()
    valid_from: datetime = DEFAULT_VALID_FROM
    organisation_policy: str = TEST_PKI_ORGANISATION_POLICY
    device_policy: str = TEST_PKI_DEVICE_POLICY

    @property
    def all_entries(self) -> tuple[PkiEntry, ...]:
        return (self.root, self.organisation_ca, self.device_ca, *self.entries)

    @property
    def anchors(self) -> tuple[SmkiCertificate, ...]:
        return (self.root.certificate,)

    @property
    def organisation_path(self) -> tuple[SmkiCertificate, ...]:
        return (self.organisation_ca.certificate,)

    @property
    def device_path(self) -> tuple[SmkiCertificate, ...]:
        return (self.device_ca.certificate,)

    @property
    def policies(self) -> frozenset[str]:
        return frozenset({self.organisation_policy, self.device_policy})

    def entry(self, name: str) -> PkiEntry:
        for candidate in self.all_entries:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def find(
        self,
        *,
        eui: Eui64 | None = None,
        role: RemotePartyRole | None = None,
        key_usage: KeyUsage | None = None,
        cell_usage: CellUsage | None = None,
    ) -> tuple[PkiEntry, ...]:
        """Entries matching every given criterion, in minting order."""
        return tuple(
            e
            for e in self.entries
            if (eui is None or e.eui == eui)
            and (role is None or e.role is role)
            and (key_usage is None or e.certificate.key_usage is key_usage)
            and (cell_usage is None or e.cell_usage is cell_usage)
        )

    def with_entries(self, *entries: PkiEntry) -> TestPki:
        taken = {e.name for e in self.all_entries}
        for new in entries:
            if new.name in taken:
                raise KeystoreError(f"duplicate entry name {new.name!r}")
            taken.add(new.name)
        return replace(self, entries=self.entries + tuple(entries))

    def issue_organisation(
        self,
        name: str,
        *,
        eui: Eui64,
        role: RemotePartyRole,
        key_usage: KeyUsage,
        cell_usage: CellUsage | None = CellUsage.MANAGEMENT,
        common_name: str | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        issuer_name: DistinguishedName | None = None,
    ) -> PkiEntry:
        """An organisation certificate (§7.1) and its key, issued by the organisation CA.

        ``cell_usage`` is the trust-anchor cell the certificate is meant for
        (``PREPAYMENT_TOP_UP`` for a supplier's top-up KA certificate); pass
        ``None`` for certificates that never sit in a cell (XML signing).
        ``issuer_name`` overrides the issuer field (e.g. the CA's name in UTF8String).
        """
        key, key_der = _new_key()
        start = self.valid_from if not_before is None else not_before
        ca = self.organisation_ca
        certificate = mint_certificate(
            subject=organisation_subject(role, eui, common_name),
            issuer_name=ca.certificate.subject if issuer_name is None else issuer_name,
            public_key=key.public_key(),
            signing_key=ca.private_key(),
            not_before=start,
            not_after=start + ORGANISATION_VALIDITY if not_after is None else not_after,
            key_usages=(_USAGE_BITS[key_usage],),
            policies=(self.organisation_policy,),
            authority_key_identifier=ca.certificate.subject_key_identifier,
        )
        return PkiEntry(name, PkiEntryKind.ORGANISATION, certificate, key_der, cell_usage, key)

    def issue_device(
        self,
        device: Eui64,
        key_usage: KeyUsage,
        *,
        name: str | None = None,
        not_before: datetime | None = None,
    ) -> PkiEntry:
        """A device certificate (§7.3): empty subject, hardwareModuleName, notAfter 9999."""
        key, key_der = _new_key()
        suffix = "ds" if key_usage is KeyUsage.DIGITAL_SIGNATURE else "ka"
        ca = self.device_ca
        certificate = mint_certificate(
            subject=_EMPTY_NAME,
            issuer_name=ca.certificate.subject,
            public_key=key.public_key(),
            signing_key=ca.private_key(),
            not_before=self.valid_from if not_before is None else not_before,
            not_after=DEVICE_NOT_AFTER,
            key_usages=(_USAGE_BITS[key_usage],),
            policies=(self.device_policy,),
            authority_key_identifier=ca.certificate.subject_key_identifier,
            device=device,
        )
        entry_name = name or f"device-{device.hex.lower()}-{suffix}"
        return PkiEntry(entry_name, PkiEntryKind.DEVICE, certificate, key_der, None, key)

    def issue_devices(
        self,
        devices: Iterable[Eui64],
        usages: Sequence[KeyUsage] = (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT),
    ) -> tuple[PkiEntry, ...]:
        """DS and KA certificates (by default) for each device, CA key reused throughout."""
        return tuple(self.issue_device(d, u) for d in devices for u in usages)


_EMPTY_NAME = DistinguishedName.build()

ROOT_NAME = "OPENECOS TEST ROOT"
ORGANISATION_CA_NAME = "OPENECOS TEST ORG CA"
DEVICE_CA_NAME = "OPENECOS TEST DEVICE CA"


def create_test_pki(
    *,
    valid_from: datetime = DEFAULT_VALID_FROM,
    organisation_policy: str = TEST_PKI_ORGANISATION_POLICY,
    device_policy: str = TEST_PKI_DEVICE_POLICY,
) -> TestPki:
    """A fresh root (OU=00), organisation CA (OU=07, pathLen 0) and device CA, no entries."""
    policies = (organisation_policy, device_policy)
    root = _issue_ca(
        "root",
        ca_subject(ROOT_NAME, RemotePartyRole.ROOT),
        issuer=None,
        path_length=None,
        policies=policies,
        valid_from=valid_from,
    )
    organisation_ca = _issue_ca(
        "organisation-ca",
        ca_subject(ORGANISATION_CA_NAME, RemotePartyRole.ISSUING_AUTHORITY),
        issuer=root,
        path_length=0,
        policies=(organisation_policy,),
        valid_from=valid_from,
    )
    device_ca = _issue_ca(
        "device-ca",
        ca_subject(DEVICE_CA_NAME, None),
        issuer=root,
        path_length=0,
        policies=(device_policy,),
        valid_from=valid_from,
    )
    return TestPki(
        root,
        organisation_ca,
        device_ca,
        (),
        valid_from,
        organisation_policy,
        device_policy,
    )
