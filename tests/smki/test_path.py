"""Certification path validation: published chains, and one test per failure reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki import (
    RTDS_DEVICE_POLICY,
    ZAZ1_ORGANISATION_POLICY,
    DistinguishedName,
    Extension,
    LeafExpectation,
    PathValidationError,
    PathValidationFailure,
    PkiEntry,
    SmkiCertificate,
    TestPki,
    ValidationTime,
    X509KeyUsage,
    create_test_pki,
    mint_certificate,
    validate_path,
)
from openecos.smki._der import UTF8_STRING
from openecos.smki.mint import organisation_subject
from tests.reference import device_certificate_pem, reference_path, zaz1_entry
from tests.smki.conftest import (
    BEFORE_Z1_EXPIRY,
    IN_TEST_PKI_VALIDITY,
    STATUS_DATE,
    rtds_623_certificates,
    template_certificates,
)

AT = ValidationTime.at(IN_TEST_PKI_VALIDITY)
ZAZ1 = (ZAZ1_ORGANISATION_POLICY,)


def rejected(
    leaf: SmkiCertificate,
    pki: TestPki,
    *,
    path: Sequence[SmkiCertificate] | None = None,
    anchors: Sequence[SmkiCertificate] | None = None,
    time: ValidationTime = AT,
    expect: LeafExpectation | None = None,
) -> PathValidationError:
    with pytest.raises(PathValidationError) as caught:
        validate_path(
            leaf,
            anchors=pki.anchors if anchors is None else anchors,
            path=pki.organisation_path if path is None else path,
            time=time,
            policies=pki.policies,
            expect=expect,
        )
    return caught.value


def minted_leaf(pki: TestPki, **changes: object) -> SmkiCertificate:
    """An organisation DS certificate from ``pki``'s CA with some fields changed."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca = pki.organisation_ca
    fields: dict[str, object] = {
        "subject": organisation_subject(RemotePartyRole.SUPPLIER, Eui64.parse("90B3D51F40019999")),
        "issuer_name": ca.certificate.subject,
        "public_key": key.public_key(),
        "signing_key": ca.private_key(),
        "not_before": pki.valid_from,
        "not_after": pki.valid_from + timedelta(days=3652),
        "key_usages": (X509KeyUsage.DIGITAL_SIGNATURE,),
        "policies": (pki.organisation_policy,),
        "authority_key_identifier": ca.certificate.subject_key_identifier,
    }
    fields.update(changes)
    return mint_certificate(**fields)  # type: ignore[arg-type]


# --- published material -----------------------------------------------------------------


def test_rtds_623_replacements_chain_to_z1_before_their_expiry() -> None:
    # rtds/6.23_CS02bSupplierByTransCoS/..._IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX, gbcs-cs02b §7.1
    found = [cert for _, cert in rtds_623_certificates()]
    replacements, z1 = found[:3], found[3]
    for leaf in replacements:
        validated = validate_path(
            leaf,
            anchors=[z1],
            path=[z1],
            time=ValidationTime.at(BEFORE_Z1_EXPIRY),
            policies=ZAZ1,
            expect=LeafExpectation(
                role=RemotePartyRole.SUPPLIER, entity=Eui64.parse("90B3D51F30030000")
            ),
        )
        assert validated.anchor is z1 and validated.intermediates == ()


def test_rtds_623_replacements_are_expired_on_the_status_date() -> None:
    found = [cert for _, cert in rtds_623_certificates()]
    z1 = found[3]
    for leaf in found[:3]:
        with pytest.raises(PathValidationError) as caught:
            validate_path(
                leaf, anchors=[z1], path=[z1], time=ValidationTime.at(STATUS_DATE), policies=ZAZ1
            )
        assert caught.value.reason is PathValidationFailure.EXPIRED
        assert caught.value.depth == 0 and caught.value.serial == leaf.serial


def test_time_checks_disapplied_accept_the_expired_rtds_replacements() -> None:
    # GBCS ApplyTimeBasedCPVChecks = disapply (gbcs-cs02b §4, the TransCoS command's [1]).
    found = [cert for _, cert in rtds_623_certificates()]
    for leaf in found[:3]:
        validate_path(leaf, anchors=[found[3]], time=ValidationTime.disapplied(), policies=ZAZ1)


def test_623_template_replacements_are_current_on_the_status_date() -> None:
    # reference/duis/templates/CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML
    found = template_certificates("CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML")
    z1 = found["Certificate"][0]
    expectations = {
        "DigitalSigningCertificate": KeyUsage.DIGITAL_SIGNATURE,
        "KeyAgreementCertificate": KeyUsage.KEY_AGREEMENT,
        "KeyAgreementTopUpCertificate": KeyUsage.KEY_AGREEMENT,
    }
    for element, usage in expectations.items():
        validate_path(
            found[element][0],
            anchors=[z1],
            path=found["Certificate"],
            time=ValidationTime.at(STATUS_DATE),
            policies=ZAZ1,
            expect=LeafExpectation(role=RemotePartyRole.SUPPLIER, key_usage=usage),
        )


def test_xml_sign_certificates_named_z1_are_not_signed_by_z1() -> None:
    # duis-xmldsig-smki §0.6: issuer says CN=Z1,OU=07, but another key signed them.
    z1 = rtds_623_certificates()[3][1]
    leaf = SmkiCertificate.from_pem(zaz1_entry("xml-sign-90B3D51F30010000-ds")["certificate"])
    with pytest.raises(PathValidationError) as caught:
        validate_path(leaf, anchors=[z1], time=ValidationTime.disapplied(), policies=ZAZ1)
    assert caught.value.reason is PathValidationFailure.BAD_SIGNATURE


def test_the_2025_dsp_xml_sign_certificate_chains_to_z1_on_the_status_date() -> None:
    # reference/keystore/Z1-accessControlBroker-dSPXmlSign.pem (duis-xmldsig-smki §3.2)
    z1 = rtds_623_certificates()[3][1]
    leaf = SmkiCertificate.from_pem(
        reference_path("keystore", "Z1-accessControlBroker-dSPXmlSign.pem").read_bytes()
    )
    validate_path(
        leaf,
        anchors=[z1],
        time=ValidationTime.at(STATUS_DATE),
        policies=ZAZ1,
        expect=LeafExpectation(role=RemotePartyRole.DSP_XML_SIGN),
    )


def test_foreign_ca_certificates_do_not_chain_to_z1() -> None:
    z1 = rtds_623_certificates()[3][1]
    mdr = SmkiCertificate.from_pem(zaz1_entry("mdr-ds")["certificate"])  # issuer CN=Z99
    with pytest.raises(PathValidationError) as caught:
        validate_path(mdr, anchors=[z1], time=ValidationTime.disapplied(), policies=ZAZ1)
    assert caught.value.reason is PathValidationFailure.UNTRUSTED_ROOT


def test_rtds_device_certificate_needs_its_device_ca() -> None:
    # reference/keystore/devices/00db1234567890a0-ds.pem: issuer CN=E357, not available.
    leaf = SmkiCertificate.from_pem(device_certificate_pem("ds"))
    z1 = rtds_623_certificates()[3][1]
    with pytest.raises(PathValidationError) as caught:
        validate_path(
            leaf, anchors=[z1], time=ValidationTime.disapplied(), policies=(RTDS_DEVICE_POLICY,)
        )
    assert caught.value.reason is PathValidationFailure.UNTRUSTED_ROOT


# --- test PKI: good chains ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "supplier-a-ds",
        "supplier-a-ka-topup",
        "acb-ka",
        "ecos-ds",
        "tcos-ds",
        "dcc-xml-sign",
        "network-operator-xml-sign",
    ],
)
def test_test_pki_organisation_certificates_validate(pki: TestPki, name: str) -> None:
    entry = pki.entry(name)
    validated = validate_path(
        entry.certificate,
        anchors=pki.anchors,
        path=pki.organisation_path,
        time=AT,
        policies=pki.policies,
        expect=LeafExpectation(
            role=entry.role, key_usage=entry.certificate.key_usage, entity=entry.eui
        ),
    )
    assert validated.certificates == (
        entry.certificate,
        pki.organisation_ca.certificate,
        pki.root.certificate,
    )


def test_test_pki_device_certificates_validate(pki: TestPki) -> None:
    device = Eui64.parse("00DB000000000001")
    for entry in pki.issue_devices([device]):
        validate_path(
            entry.certificate,
            anchors=pki.anchors,
            path=pki.device_path,
            time=AT,
            policies=pki.policies,
            expect=LeafExpectation(device=device, key_usage=entry.certificate.key_usage),
        )


def test_an_issuing_ca_held_as_trust_anchor_ends_the_path(pki: TestPki) -> None:
    # As with Z1: the CS02b certificationPath carries the CA that is also the anchor.
    leaf = pki.entry("supplier-b-ds").certificate
    ca = pki.organisation_ca.certificate
    validated = validate_path(leaf, anchors=[ca], path=[ca], time=AT, policies=pki.policies)
    assert validated.anchor is ca and validated.intermediates == ()


def test_issuer_name_in_utf8_string_chains_to_a_printable_string_ca(pki: TestPki) -> None:
    printable = pki.organisation_ca.certificate.subject
    utf8 = DistinguishedName.build(*((a.oid, UTF8_STRING, a.value) for a in printable.attributes))
    leaf = minted_leaf(pki, issuer_name=utf8)
    assert leaf.issuer.der != printable.der
    validate_path(
        leaf, anchors=pki.anchors, path=pki.organisation_path, time=AT, policies=pki.policies
    )


# --- test PKI: one failure each -------------------------------------------------------------


def test_expired(pki: TestPki) -> None:
    leaf = minted_leaf(pki, not_after=IN_TEST_PKI_VALIDITY - timedelta(seconds=1))
    assert rejected(leaf, pki).reason is PathValidationFailure.EXPIRED


def test_not_yet_valid(pki: TestPki) -> None:
    leaf = minted_leaf(pki, not_before=IN_TEST_PKI_VALIDITY + timedelta(seconds=1))
    assert rejected(leaf, pki).reason is PathValidationFailure.NOT_YET_VALID


def test_expired_intermediate_is_reported_at_its_depth() -> None:
    early = create_test_pki(valid_from=datetime(2000, 1, 1, tzinfo=UTC))  # CAs end in 2025
    leaf = minted_leaf(early, not_after=datetime(2030, 1, 1, tzinfo=UTC))
    error = rejected(leaf, early, time=ValidationTime.at(datetime(2026, 1, 1, tzinfo=UTC)))
    assert (error.reason, error.depth) == (PathValidationFailure.EXPIRED, 1)


def test_wrong_issuer_name(pki: TestPki) -> None:
    leaf = pki.entry("supplier-a-ds").certificate
    error = rejected(leaf, pki, path=pki.device_path)
    assert error.reason is PathValidationFailure.WRONG_ISSUER


def test_wrong_issuer_key_identifier(pki: TestPki) -> None:
    other = create_test_pki()  # same CA names, other keys
    leaf = pki.entry("supplier-a-ds").certificate
    error = rejected(leaf, pki, path=other.organisation_path)
    assert error.reason is PathValidationFailure.WRONG_ISSUER


def test_untrusted_root(pki: TestPki) -> None:
    other = create_test_pki()
    error = rejected(pki.entry("supplier-a-ds").certificate, pki, anchors=other.anchors)
    assert (error.reason, error.depth) == (PathValidationFailure.UNTRUSTED_ROOT, 1)


def test_bad_signature_by_another_key(pki: TestPki) -> None:
    leaf = minted_leaf(pki, signing_key=ec.generate_private_key(ec.SECP256R1()))
    assert rejected(leaf, pki).reason is PathValidationFailure.BAD_SIGNATURE


def test_bad_signature_after_tampering_with_the_tbs(pki: TestPki) -> None:
    good = pki.entry("supplier-a-ds").certificate
    # Change one byte of the entity ID inside the subject: still parses, no longer signed.
    position = good.der.index(b"\x90\xb3\xd5\x1f\x40\x01\x00\x00")
    tampered = SmkiCertificate.from_der(good.der[:position] + b"\x91" + good.der[position + 1 :])
    assert tampered.entity_eui != good.entity_eui
    assert rejected(tampered, pki).reason is PathValidationFailure.BAD_SIGNATURE


def test_not_a_ca(pki: TestPki) -> None:
    end_entity = pki.entry("supplier-a-ds")
    leaf = minted_leaf(
        pki,
        issuer_name=end_entity.certificate.subject,
        signing_key=end_entity.private_key(),
        authority_key_identifier=end_entity.certificate.subject_key_identifier,
    )
    error = rejected(leaf, pki, path=(end_entity.certificate, pki.organisation_ca.certificate))
    assert (error.reason, error.depth) == (PathValidationFailure.NOT_A_CA, 1)


def test_path_too_long_for_the_organisation_ca_path_length_zero(pki: TestPki) -> None:
    sub_key = ec.generate_private_key(ec.SECP256R1())
    ca = pki.organisation_ca
    sub_ca = mint_certificate(
        subject=DistinguishedName.build(("2.5.4.3", UTF8_STRING, b"SUB CA")),
        issuer_name=ca.certificate.subject,
        public_key=sub_key.public_key(),
        signing_key=ca.private_key(),
        not_before=pki.valid_from,
        not_after=pki.valid_from + timedelta(days=3652),
        key_usages=(X509KeyUsage.KEY_CERT_SIGN,),
        policies=(pki.organisation_policy,),
        authority_key_identifier=ca.certificate.subject_key_identifier,
        is_ca=True,
    )
    sub = PkiEntry("sub-ca", ca.kind, sub_ca, None, None, sub_key)
    leaf = minted_leaf(
        pki,
        issuer_name=sub_ca.subject,
        signing_key=sub.private_key(),
        authority_key_identifier=sub_ca.subject_key_identifier,
    )
    error = rejected(leaf, pki, path=(sub_ca, ca.certificate))
    assert (error.reason, error.depth) == (PathValidationFailure.PATH_TOO_LONG, 2)


def test_wrong_role(pki: TestPki) -> None:
    leaf = pki.entry("network-operator-ds").certificate
    error = rejected(leaf, pki, expect=LeafExpectation(role=RemotePartyRole.SUPPLIER))
    assert error.reason is PathValidationFailure.WRONG_ROLE


def test_wrong_key_usage(pki: TestPki) -> None:
    leaf = pki.entry("supplier-a-ka").certificate
    error = rejected(leaf, pki, expect=LeafExpectation(key_usage=KeyUsage.DIGITAL_SIGNATURE))
    assert error.reason is PathValidationFailure.WRONG_KEY_USAGE


def test_wrong_entity(pki: TestPki) -> None:
    leaf = pki.entry("supplier-a2-ds").certificate
    error = rejected(leaf, pki, expect=LeafExpectation(entity=pki.entry("supplier-a-ds").eui))
    assert error.reason is PathValidationFailure.WRONG_ENTITY


def test_missing_policy(pki: TestPki) -> None:
    assert rejected(minted_leaf(pki, policies=()), pki).reason is (
        PathValidationFailure.MISSING_POLICY
    )
    foreign = minted_leaf(pki, policies=(ZAZ1_ORGANISATION_POLICY,))
    assert rejected(foreign, pki).reason is PathValidationFailure.MISSING_POLICY


def test_unknown_critical_extension(pki: TestPki) -> None:
    leaf = minted_leaf(pki, extra_extensions=(Extension("1.2.3.4", True, b"\x05\x00"),))
    assert rejected(leaf, pki).reason is PathValidationFailure.UNKNOWN_CRITICAL_EXTENSION


def test_unknown_non_critical_extension_is_ignored(pki: TestPki) -> None:
    leaf = minted_leaf(pki, extra_extensions=(Extension("1.2.3.4", False, b"\x05\x00"),))
    validate_path(
        leaf, anchors=pki.anchors, path=pki.organisation_path, time=AT, policies=pki.policies
    )


def test_validation_time_must_be_aware() -> None:
    with pytest.raises(ValueError):
        ValidationTime.at(datetime(2026, 1, 1))
