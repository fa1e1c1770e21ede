"""SmkiCertificate reads every certificate of the published test material."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki import (
    CertificateError,
    CertificateProblem,
    DistinguishedName,
    SmkiCertificate,
    X509KeyUsage,
    load_pem_certificates,
    subject_key_identifier_method2,
)
from openecos.smki._der import BIT_STRING, PRINTABLE_STRING, UTF8_STRING
from openecos.smki.names import OID_COMMON_NAME, OID_ORGANIZATIONAL_UNIT
from openecos.smki.path import ZAZ1_ORGANISATION_POLICY
from tests.reference import device_certificate_pem, reference_path, zaz1_entry, zaz1_keystore
from tests.smki.conftest import rtds_623_certificates, template_certificates

ZAZ1_NAMES = sorted(
    entry["name"]
    for by_usage in zaz1_keystore().values()
    for by_serial in by_usage.values()
    for entry in by_serial.values()
)


def zaz1_certificate(name: str) -> SmkiCertificate:
    return SmkiCertificate.from_pem(zaz1_entry(name)["certificate"])


@pytest.mark.parametrize("name", ZAZ1_NAMES)
def test_every_zaz1_certificate_parses_with_the_role_eui_usage_of_its_entry(name: str) -> None:
    # reference/keystore/zaz1-keystore.json: {eui: {usage: {serial: {role, name, ...}}}}
    for eui, by_usage in zaz1_keystore().items():
        for usage, by_serial in by_usage.items():
            for serial, entry in by_serial.items():
                if entry["name"] != name:
                    continue
                cert = SmkiCertificate.from_pem(entry["certificate"])
                assert cert.serial == int(serial)
                assert cert.entity_eui == Eui64.parse(eui)
                assert cert.key_usage is KeyUsage(usage)
                assert cert.role is RemotePartyRole(entry["role"])
                assert cert.policies == (ZAZ1_ORGANISATION_POLICY,)
                assert cert.policies_critical is True
                assert cert.device_eui is None
                assert not cert.is_ca


@pytest.mark.parametrize("name", ZAZ1_NAMES)
def test_subject_key_identifier_is_rfc5280_method_2(name: str) -> None:
    cert = zaz1_certificate(name)
    assert cert.subject_key_identifier == subject_key_identifier_method2(cert.subject_public_key)


@pytest.mark.parametrize(
    ("name", "ski"),
    [
        # docs/gbcs-cs02b.md §5.2: the TransCoS response's existing and replacing key IDs.
        ("Z1-transitionalCoS-ds", "4B38EB47561D93E8"),
        ("Z1b-transitionalCoS-ds", "4F3F10855696FEF2"),
        # §5.3: the 6.23 response's existing key IDs of the old supplier.
        ("Z1-supplier-ds", "44899792D196F4B8"),
        ("Z1-supplier-ka", "405B8C62687D8F70"),
        ("Z1-supplierPP-ka", "41FB49221588C570"),
    ],
)
def test_subject_key_identifiers_match_the_documented_values(name: str, ski: str) -> None:
    assert zaz1_certificate(name).subject_key_identifier == bytes.fromhex(ski)


def test_mdr_certificates_with_null_algorithm_parameters_parse() -> None:
    # duis-xmldsig-smki §3.2: cryptography refuses these (ecdsa-with-SHA256 + NULL).
    for name in ("mdr-ds", "mdr-ka"):
        cert = zaz1_certificate(name)
        assert cert.role is RemotePartyRole.OTHER
        assert cert.entity_eui == Eui64.parse("90B3D51F30010009")
        assert cert.subject.common_name == "MDR"
        assert str(cert.issuer) == "CN=Z99,OU=07"


def test_supplier_certificate_names_render_as_rfc4514() -> None:
    cert = zaz1_certificate("Z1-supplier-ds")
    assert str(cert.issuer) == "CN=Z1,OU=07"
    assert cert.subject.common_name == "GITTESTSUPPLIER"
    assert str(cert.subject).startswith("2.5.4.45=#03090090B3D51F30010000,OU=02")
    assert cert.authority_key_identifier == bytes.fromhex("4F5688D7EC933BE2")


def test_dsp_xml_signing_certificates_including_the_legacy_decimal_ou() -> None:
    # reference/keystore/*.pem, duis-xmldsig-smki §3.2
    current = SmkiCertificate.from_pem(
        reference_path("keystore", "Z1-accessControlBroker-dSPXmlSign.pem").read_bytes()
    )
    assert current.serial_hex == "0F4889EF197D41E9016966F9D5AB0402"
    assert current.serial == 20315062944123339095836004026371736578
    assert current.role is RemotePartyRole.DSP_XML_SIGN and not current.legacy_decimal_ou
    legacy = SmkiCertificate.from_pem(
        reference_path("keystore", "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem").read_bytes()
    )
    assert legacy.serial_hex == "261E9CCC40A78FD13D83BCE07DACFE08"
    assert legacy.role is RemotePartyRole.DSP_XML_SIGN and legacy.legacy_decimal_ou
    assert legacy.entity_eui == current.entity_eui == Eui64.parse("90B3D51F30000002")
    plain = SmkiCertificate.from_pem(
        reference_path("keystore", "dsp-xml-sign-90B3D51F30000002-ds.pem").read_bytes()
    )
    assert plain.serial_hex == "7DAC7283AAD29BDD23C9EFBFDDB52A41"


@pytest.mark.parametrize(
    ("usage", "key_usage"), [("ds", KeyUsage.DIGITAL_SIGNATURE), ("ka", KeyUsage.KEY_AGREEMENT)]
)
def test_device_certificate_of_the_rtds_meter(usage: str, key_usage: KeyUsage) -> None:
    # reference/keystore/devices/00db1234567890a0-{ds,ka}.pem, gbcs-cs02b §7.3
    cert = SmkiCertificate.from_pem(device_certificate_pem(usage))
    assert cert.subject.is_empty and cert.role is None and cert.entity_eui is None
    assert cert.device_eui == Eui64.parse("00DB1234567890A0") and cert.is_device
    assert cert.key_usage is key_usage
    assert cert.not_after == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert cert.not_before == datetime(2016, 4, 6, tzinfo=UTC)
    assert cert.authority_key_identifier == bytes.fromhex("47D40AF3412904A0")
    assert cert.policies == ("1.2.826.0.1.1800000.1.2.1.4",)
    san = cert.extension("2.5.29.17")
    assert san is not None and san.critical


def test_rtds_623_command_carries_the_documented_certificates() -> None:
    # docs/gbcs-cs02b.md §5.1: three supplier2 replacements and the Z1 CA.
    found = rtds_623_certificates()
    assert [offset for offset, _ in found] == [101, 547, 967, 1388]
    serials = [cert.serial_hex for _, cert in found]
    assert serials == [
        "39EAFF0055CE4DAF085AC874C7C84BD3",
        "2C0AC55B46CB410E7409D3FDA762C30B",
        "30E12228CEDECA04DE91A825B22CE740",
        "71872BDBC82789BC1401CE01BA06ADA3",
    ]
    # §5.3: the replacing key IDs reported by the meter.
    skis = [cert.subject_key_identifier.hex().upper() for _, cert in found[:3]]  # type: ignore[union-attr]
    assert skis == ["4A8103ADAC183A89", "483972547DCD7835", "43049452FE1FCE0A"]
    for _, cert in found[:3]:
        assert cert.entity_eui == Eui64.parse("90B3D51F30030000")
        assert cert.role is RemotePartyRole.SUPPLIER
    ca = found[3][1]
    assert ca.is_ca and ca.path_length == 0 and ca.role is RemotePartyRole.ISSUING_AUTHORITY
    assert ca.key_usages == {X509KeyUsage.KEY_CERT_SIGN, X509KeyUsage.CRL_SIGN}
    assert ca.key_usage is None and ca.can_sign_certificates and ca.can_sign_crls
    assert ca.subject_key_identifier == bytes.fromhex("4F5688D7EC933BE2")
    assert ca.authority_key_identifier == bytes.fromhex("48CF1B32697C4669")
    assert str(ca.subject) == "CN=Z1,OU=07" and str(ca.issuer) == "CN=ZA,OU=00"


def test_623_template_certificates_parse_as_documented() -> None:
    # reference/duis/templates/CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML
    found = template_certificates("CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML")
    ds = found["DigitalSigningCertificate"][0]
    ka = found["KeyAgreementCertificate"][0]
    top_up = found["KeyAgreementTopUpCertificate"][0]
    assert (ds.serial_hex, ka.serial_hex, top_up.serial_hex) == (
        "44B7F8A61EA5FD82B008642B407C4033",
        "2942908480978EDC7B1A68F285DCA154",
        "608C1321B2426624B0D521A4559D9B08",
    )
    assert (
        ds.key_usage is KeyUsage.DIGITAL_SIGNATURE and ds.subject.common_name == "GITTESTSUPPLIER2"
    )
    assert ka.key_usage is top_up.key_usage is KeyUsage.KEY_AGREEMENT
    assert {c.entity_eui for c in (ds, ka, top_up)} == {Eui64.parse("90-B3-D5-1F-30-03-00-00")}
    assert found["Certificate"][0].serial_hex == "71872BDBC82789BC1401CE01BA06ADA3"


@pytest.mark.parametrize(
    "name",
    [p.name for p in sorted((reference_path("duis", "templates")).glob("*.XML"))],
)
def test_every_template_certificate_parses(name: str) -> None:
    for certificates in template_certificates(name).values():
        for cert in certificates:
            assert cert.der and cert.tbs_der in cert.der


def test_names_match_regardless_of_string_type_and_case() -> None:
    printable = DistinguishedName.build(
        (OID_ORGANIZATIONAL_UNIT, PRINTABLE_STRING, b"07"),
        (OID_COMMON_NAME, PRINTABLE_STRING, b"Z1"),
    )
    utf8 = DistinguishedName.build(
        (OID_ORGANIZATIONAL_UNIT, UTF8_STRING, b"07"), (OID_COMMON_NAME, UTF8_STRING, b"z1")
    )
    other = DistinguishedName.build(
        (OID_ORGANIZATIONAL_UNIT, UTF8_STRING, b"07"), (OID_COMMON_NAME, UTF8_STRING, b"Z2")
    )
    reordered = DistinguishedName.build(
        (OID_COMMON_NAME, PRINTABLE_STRING, b"Z1"),
        (OID_ORGANIZATIONAL_UNIT, PRINTABLE_STRING, b"07"),
    )
    assert printable.der != utf8.der and printable != utf8
    assert printable.matches(utf8) and utf8.matches(printable)
    assert not printable.matches(other)
    assert not printable.matches(reordered)
    assert str(printable) == "CN=Z1,OU=07"


def test_entity_id_compares_as_bytes_not_as_string() -> None:
    a = DistinguishedName.build(("2.5.4.45", BIT_STRING, b"\x00" + bytes(8)))
    b = DistinguishedName.build(("2.5.4.45", BIT_STRING, b"\x00" + bytes(7) + b"\x01"))
    assert not a.matches(b) and a.matches(DistinguishedName.from_der(a.der))


def test_pem_bundle_yields_every_certificate() -> None:
    bundle = (
        zaz1_entry("Z1-supplier-ds")["certificate"] + zaz1_entry("Z1-supplier-ka")["certificate"]
    )
    assert [c.role for c in load_pem_certificates(bundle)] == [RemotePartyRole.SUPPLIER] * 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", CertificateProblem.MALFORMED_DER),
        (b"\x30\x80\x00\x00", CertificateProblem.MALFORMED_DER),
        (b"\x30\x03\x02\x01\x01", CertificateProblem.MALFORMED_DER),
        (b"\x04\x00", CertificateProblem.MALFORMED_DER),
    ],
)
def test_garbage_raises_certificate_error_with_a_reason(
    data: bytes, reason: CertificateProblem
) -> None:
    with pytest.raises(CertificateError) as caught:
        SmkiCertificate.from_der(data)
    assert caught.value.reason is reason


def test_text_without_a_pem_block_is_not_pem() -> None:
    with pytest.raises(CertificateError) as caught:
        SmkiCertificate.from_pem("hello")
    assert caught.value.reason is CertificateProblem.NOT_PEM


def test_trailing_bytes_after_a_certificate_are_refused() -> None:
    der = zaz1_certificate("Z1-supplier-ds").der
    with pytest.raises(CertificateError):
        SmkiCertificate.from_der(der + b"\x00")


def test_a_certificate_read_twice_is_parsed_once_and_shared() -> None:
    from openecos.smki import CertificateError, sandbox_pki

    der = sandbox_pki().entry("supplier-b-ds").certificate.der
    first = SmkiCertificate.from_der(der)
    assert SmkiCertificate.from_der(bytes(bytearray(der))) is first  # equal bytes, same value
    broken = der[:-1]
    for _ in range(2):  # a failure is never remembered as a success
        with pytest.raises(CertificateError):
            SmkiCertificate.from_der(broken)
