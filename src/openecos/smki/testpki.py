"""A test PKI with the SMKI certificate profile: root, CAs, parties and devices.

Theory of operation: minting is pure. Every function takes values and returns
certificates and private keys as values (``PkiEntry``); nothing is written
until ``openecos.smki.testpki_files.write_test_pki`` is called, and no clock is
read: validity starts at ``TestPki.valid_from`` unless the caller says
otherwise. Certificates are encoded by ``openecos.smki.mint`` so that the
profile of docs/gbcs-cs02b.md §7 is followed exactly:

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.errors import KeystoreError
from openecos.smki.extensions import X509KeyUsage
from openecos.smki.mint import (
    TEST_PKI_DEVICE_POLICY,
    TEST_PKI_ORGANISATION_POLICY,
    ca_subject,
    mint_certificate,
    new_key_pair,
    organisation_subject,
)
from openecos.smki.names import DistinguishedName

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


def _issue_ca(
    name: str,
    subject: DistinguishedName,
    *,
    issuer: PkiEntry | None,
    path_length: int | None,
    policies: Sequence[str],
    valid_from: datetime,
) -> PkiEntry:
    key, key_der = new_key_pair()
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
        key, key_der = new_key_pair()
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
        key, key_der = new_key_pair()
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
