"""The test PKI follows the SMKI profile, and its directory reloads identically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.smki import (
    SANDBOX_PARTIES,
    CertificateError,
    CertificateProblem,
    DistinguishedName,
    KeystoreError,
    PkiEntryKind,
    TestPki,
    X509KeyUsage,
    load_test_pki,
    mint_certificate,
    pki_index,
    subject_key_identifier_method2,
    write_test_pki,
)
from openecos.smki._der import BIT_STRING, UTF8_STRING
from openecos.smki.extensions import OID_CERTIFICATE_POLICIES, OID_KEY_USAGE
from openecos.smki.names import OID_ORGANIZATIONAL_UNIT, OID_X500_UNIQUE_IDENTIFIER


def test_root_and_cas_have_the_ca_profile(pki: TestPki) -> None:
    root, org_ca, device_ca = pki.root, pki.organisation_ca, pki.device_ca
    assert root.kind is PkiEntryKind.ROOT and root.role is RemotePartyRole.ROOT
    assert org_ca.kind is PkiEntryKind.CA and org_ca.role is RemotePartyRole.ISSUING_AUTHORITY
    assert org_ca.certificate.path_length == 0 and device_ca.certificate.path_length == 0
    for entry in (root, org_ca, device_ca):
        cert = entry.certificate
        assert cert.is_ca and cert.key_usages == {X509KeyUsage.KEY_CERT_SIGN, X509KeyUsage.CRL_SIGN}
        assert all(a.tag == 0x13 for a in cert.subject.attributes)  # PrintableString (§7.2)
    assert org_ca.certificate.issuer.matches(root.certificate.subject)
    assert org_ca.certificate.authority_key_identifier == root.certificate.subject_key_identifier


def test_organisation_certificates_follow_the_smki_profile(pki: TestPki) -> None:
    for entry in pki.entries:
        cert = entry.certificate
        assert entry.kind is PkiEntryKind.ORGANISATION
        assert len(cert.der) > 0 and 0 < cert.serial < 1 << 127 and cert.serial >= 1 << 120
        assert cert.signature_algorithm == "1.2.840.10045.4.3.2"
        assert [e.oid for e in cert.extensions] == [
            OID_KEY_USAGE,
            "2.5.29.14",
            OID_CERTIFICATE_POLICIES,
            "2.5.29.35",
        ]
        assert [e.critical for e in cert.extensions] == [True, False, True, False]
        assert cert.key_usage is not None  # single-purpose
        assert cert.subject_key_identifier == subject_key_identifier_method2(
            cert.subject_public_key
        )
        assert (
            cert.authority_key_identifier == pki.organisation_ca.certificate.subject_key_identifier
        )
        assert cert.policies == (pki.organisation_policy,)
        subject_types = [a.oid for a in cert.subject.attributes]
        assert subject_types[-2:] == [OID_ORGANIZATIONAL_UNIT, OID_X500_UNIQUE_IDENTIFIER]


def test_device_certificates_follow_the_smki_profile(pki: TestPki) -> None:
    device = Eui64.parse("00DB000000000A0B")
    ds, ka = pki.issue_devices([device])
    for entry, usage in ((ds, KeyUsage.DIGITAL_SIGNATURE), (ka, KeyUsage.KEY_AGREEMENT)):
        cert = entry.certificate
        assert cert.subject.is_empty and cert.device_eui == device and cert.role is None
        assert cert.key_usage is usage
        assert cert.not_after == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        assert b"\x18\x0f99991231235959Z" in cert.tbs_der  # GeneralizedTime (§7.3)
        san = cert.extension("2.5.29.17")
        assert san is not None and san.critical
    assert ds.name == "device-00db000000000a0b-ds" and ka.name == "device-00db000000000a0b-ka"


def test_sandbox_parties_are_all_present_with_distinct_entity_ids(pki: TestPki) -> None:
    assert [e.name for e in pki.entries] == [row.name for row in SANDBOX_PARTIES]
    tcos, ecos = pki.entry("tcos-ds"), pki.entry("ecos-ds")
    assert tcos.role is ecos.role is RemotePartyRole.TRANSITIONAL_COS
    assert tcos.eui != ecos.eui
    supplier_a = {pki.entry("supplier-a-ds").eui, pki.entry("supplier-a2-ds").eui}
    assert len(supplier_a) == 2 and pki.entry("supplier-b-ds").eui not in supplier_a
    assert pki.entry("supplier-a-ka-topup").cell_usage is CellUsage.PREPAYMENT_TOP_UP
    assert pki.entry("dcc-xml-sign").role is RemotePartyRole.DSP_XML_SIGN
    assert pki.entry("supplier-b-xml-sign").role is RemotePartyRole.XML_SIGN
    assert len(pki.find(role=RemotePartyRole.ACCESS_CONTROL_BROKER)) == 2


def test_private_keys_match_their_certificates(pki: TestPki) -> None:
    for entry in pki.all_entries:
        key = entry.private_key()
        assert key.public_key() == entry.certificate.public_key


def test_minted_devices_have_distinct_serials_and_keys(pki: TestPki) -> None:
    devices = [Eui64.from_int(0x00DB000000010000 + n) for n in range(50)]
    entries = pki.issue_devices(devices)
    assert len({e.certificate.serial for e in entries}) == 100
    assert len({e.certificate.subject_public_key for e in entries}) == 100
    bigger = pki.with_entries(*entries)
    assert len(bigger.entries) == len(pki.entries) + 100
    assert bigger.entry(entries[0].name) == entries[0]


def test_duplicate_entry_names_are_refused(pki: TestPki) -> None:
    with pytest.raises(KeystoreError):
        pki.with_entries(
            pki.issue_organisation(
                "supplier-a-ds",
                eui=Eui64.parse("90B3D51F40019999"),
                role=RemotePartyRole.SUPPLIER,
                key_usage=KeyUsage.DIGITAL_SIGNATURE,
            )
        )


def test_written_directory_reloads_identically(pki: TestPki, tmp_path: Path) -> None:
    bigger = pki.with_entries(*pki.issue_devices([Eui64.parse("00DB1234567800FF")]))
    write_test_pki(bigger, tmp_path)
    reloaded = load_test_pki(tmp_path)
    assert reloaded == bigger
    assert [e.private_key_pem for e in reloaded.all_entries] == [
        e.private_key_pem for e in bigger.all_entries
    ]
    # A key read back from disk still signs for its certificate.
    entry = reloaded.entry("supplier-a-ds")
    signature = entry.private_key().sign(b"m", ec.ECDSA(hashes.SHA256()))
    entry.certificate.public_key.verify(signature, b"m", ec.ECDSA(hashes.SHA256()))


def test_index_file_has_the_agreed_shape(pki: TestPki, tmp_path: Path) -> None:
    index = json.loads(write_test_pki(pki, tmp_path).read_text())
    assert index == pki_index(pki)
    assert set(index) == {"format", "entries"} and index["format"] == "openecos-test-pki/1"
    fields = {
        "name",
        "kind",
        "eui",
        "role",
        "key_usage",
        "cell_usage",
        "serial",
        "certificate",
        "private_key",
    }
    for row in index["entries"]:
        assert set(row) == fields
        assert (tmp_path / row["certificate"]).is_file()
        assert (tmp_path / row["private_key"]).is_file()
        assert row["kind"] in {"root", "ca", "organisation", "device"}
        assert row["key_usage"] in {"digitalSignature", "keyAgreement", "keyCertSign"}
    rows = {row["name"]: row for row in index["entries"]}
    assert rows["supplier-a-ds"]["eui"] == "90B3D51F40010000"
    assert rows["supplier-a-ds"]["role"] == 2 and rows["supplier-a-ds"]["cell_usage"] == 0
    assert rows["supplier-a-ka-topup"]["cell_usage"] == 1
    assert rows["root"]["eui"] is None and rows["root"]["key_usage"] == "keyCertSign"
    assert rows["dcc-xml-sign"]["role"] == 0x89 and rows["dcc-xml-sign"]["cell_usage"] is None
    assert rows["supplier-a-ds"]["serial"] == pki.entry("supplier-a-ds").certificate.serial_hex


def test_loading_a_malformed_directory_raises_keystore_error(pki: TestPki, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError):
        load_test_pki(tmp_path)
    write_test_pki(pki, tmp_path)
    index = json.loads((tmp_path / "pki.json").read_text())
    index["entries"][3]["certificate"] = "../outside.pem"
    (tmp_path / "pki.json").write_text(json.dumps(index))
    with pytest.raises(KeystoreError):
        load_test_pki(tmp_path)
    index["entries"][3]["certificate"] = "keys/root.key.pem"  # not a certificate
    (tmp_path / "pki.json").write_text(json.dumps(index))
    with pytest.raises(KeystoreError):
        load_test_pki(tmp_path)


def _with_subject(pki: TestPki, subject: DistinguishedName) -> bytes:
    """DER of a certificate with ``subject``; minting parses it, so errors surface here."""
    key = ec.generate_private_key(ec.SECP256R1())
    return mint_certificate(
        subject=subject,
        issuer_name=pki.organisation_ca.certificate.subject,
        public_key=key.public_key(),
        signing_key=key,
        not_before=pki.valid_from,
        not_after=pki.valid_from,
        key_usages=(X509KeyUsage.DIGITAL_SIGNATURE,),
        policies=(),
        authority_key_identifier=None,
    ).der


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        (((OID_ORGANIZATIONAL_UNIT, UTF8_STRING, b"ZZ"),), CertificateProblem.BAD_ROLE),
        (((OID_ORGANIZATIONAL_UNIT, UTF8_STRING, b"0A"),), CertificateProblem.BAD_ROLE),
        (((OID_ORGANIZATIONAL_UNIT, UTF8_STRING, b"2"),), CertificateProblem.BAD_ROLE),
        (
            ((OID_X500_UNIQUE_IDENTIFIER, BIT_STRING, b"\x00" + bytes(7)),),
            CertificateProblem.BAD_ENTITY_ID,
        ),
        (
            ((OID_X500_UNIQUE_IDENTIFIER, BIT_STRING, b"\x04" + bytes(8)),),
            CertificateProblem.BAD_ENTITY_ID,
        ),
        (((OID_X500_UNIQUE_IDENTIFIER, 0x04, bytes(8)),), CertificateProblem.BAD_ENTITY_ID),
    ],
)
def test_subjects_outside_the_profile_raise_certificate_error(
    pki: TestPki, attributes: tuple[tuple[str, int, bytes], ...], reason: CertificateProblem
) -> None:
    with pytest.raises(CertificateError) as caught:
        _with_subject(pki, DistinguishedName.build(*attributes))
    assert caught.value.reason is reason
