"""Signer binding: the signing certificate may sign for the RequestID originator
(docs/duis-xmldsig-smki.md §0 fact 4, §3, §6 step 6)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from openecos.duis import (
    DuisSchema,
    PrivateKeySigner,
    ResponseCode,
    SignerNotBound,
    SigningIdentity,
    parse_document,
    read_update_security_credentials_cos,
    receive_update_security_credentials_cos,
    resign,
    verify_signature,
)
from openecos.duis.binding import DCC_XML_SIGNING_ROLES, check_signer_binding
from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.smki import (
    ZAZ1_ORGANISATION_POLICY,
    PkiEntry,
    SmkiCertificate,
    TestPki,
    create_test_pki,
)
from tests.duis.conftest import Resolver, sample, template_623
from tests.reference import zaz1_entry

SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")  # the templates' originator
NETWORK_OPERATOR = Eui64.parse("90-B3-D5-1F-30-02-00-00")
DCC = Eui64.parse("90-B3-D5-1F-30-00-00-02")
NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def test_pki() -> TestPki:
    return create_test_pki(valid_from=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))


def _issue(
    pki: TestPki,
    eui: Eui64,
    role: RemotePartyRole = RemotePartyRole.XML_SIGN,
    usage: KeyUsage = KeyUsage.DIGITAL_SIGNATURE,
) -> PkiEntry:
    return pki.issue_organisation(
        f"xml-sign-{eui.hex}-{role.ou}-{usage.value}",
        eui=eui,
        role=role,
        key_usage=usage,
        cell_usage=None if role is RemotePartyRole.XML_SIGN else CellUsage.MANAGEMENT,
    )


def _signed_by(entry: PkiEntry, schema: DuisSchema) -> tuple[bytes, Eui64]:
    """A 6.23 template signed with ``entry``'s key, received; returns (certificate, originator)."""
    der = entry.certificate.der
    identity = SigningIdentity.for_certificate(PrivateKeySigner(entry.private_key()), der)
    received = receive_update_security_credentials_cos(
        resign(template_623("immediate"), identity),
        schema=schema,
        resolve_certificate=lambda issuer, serial: der,
    )
    assert received.signature.certificate_der is not None
    return received.signature.certificate_der, received.request.header.request_id.originator


def _bind(test_pki: TestPki, der: bytes, originator: Eui64, **kwargs: object) -> SmkiCertificate:
    options: dict[str, object] = {
        "at": NOW,
        "anchors": test_pki.anchors,
        "policies": test_pki.policies,
        "intermediates": test_pki.organisation_path,
    }
    options.update(kwargs)
    return check_signer_binding(der, originator, **options)  # type: ignore[arg-type]


def test_supplier_xml_sign_certificate_is_bound(test_pki: TestPki, schema: DuisSchema) -> None:
    der, originator = _signed_by(_issue(test_pki, SUPPLIER), schema)
    leaf = _bind(test_pki, der, originator)
    assert (leaf.entity_eui, leaf.role) == (SUPPLIER, RemotePartyRole.XML_SIGN)


def test_another_partys_certificate_is_not_bound(test_pki: TestPki, schema: DuisSchema) -> None:
    # The Java tool accepts a supplier request signed by the network operator (§0 fact 4).
    der, originator = _signed_by(_issue(test_pki, NETWORK_OPERATOR), schema)
    with pytest.raises(SignerNotBound, match="belongs to") as info:
        _bind(test_pki, der, originator)
    assert info.value.response_code is ResponseCode.E1


@pytest.mark.parametrize(
    ("role", "usage", "match"),
    [
        (RemotePartyRole.SUPPLIER, KeyUsage.DIGITAL_SIGNATURE, "not an XML-signing role"),
        (RemotePartyRole.DSP_XML_SIGN, KeyUsage.DIGITAL_SIGNATURE, "not an XML-signing role"),
        (RemotePartyRole.XML_SIGN, KeyUsage.KEY_AGREEMENT, "key usage"),
    ],
)
def test_wrong_role_or_usage_is_not_bound(
    test_pki: TestPki, role: RemotePartyRole, usage: KeyUsage, match: str
) -> None:
    der = _issue(test_pki, SUPPLIER, role, usage).certificate.der
    with pytest.raises(SignerNotBound, match=match):
        _bind(test_pki, der, SUPPLIER)


def test_expired_or_not_yet_valid_certificate_is_not_bound(test_pki: TestPki) -> None:
    leaf = _issue(test_pki, SUPPLIER).certificate
    for moment in (leaf.not_after + dt.timedelta(seconds=1), leaf.not_before - dt.timedelta(1)):
        with pytest.raises(SignerNotBound, match="not valid at"):
            _bind(test_pki, leaf.der, SUPPLIER, at=moment)


def test_certificate_from_another_pki_is_not_bound_unless_pinned(test_pki: TestPki) -> None:
    stranger = create_test_pki(valid_from=test_pki.valid_from)
    der = _issue(stranger, SUPPLIER).certificate.der
    with pytest.raises(SignerNotBound, match="chain"):
        _bind(test_pki, der, SUPPLIER)
    assert _bind(test_pki, der, SUPPLIER, pinned={der}).entity_eui == SUPPLIER


def test_unreadable_certificate_is_not_bound(test_pki: TestPki) -> None:
    with pytest.raises(SignerNotBound, match="cannot be read"):
        _bind(test_pki, b"\x30\x03\x02\x01\x00", SUPPLIER)


# -- ZAZ1 public material -------------------------------------------------------------------


def _z1_anchor() -> SmkiCertificate:
    # The Z1 CA travels in every 6.23 template's CertificationPathCertificates (§3.3).
    request = read_update_security_credentials_cos(parse_document(template_623("immediate")))
    return SmkiCertificate.from_der(request.body.certification_path_certificates[0])


def test_dcc_signed_sample_is_bound_to_the_dcc_through_z1(zaz1_resolver: Resolver) -> None:
    # read-inventory-response-5.4.xml: Z1-accessControlBroker-dSPXmlSign, OU 89 (§3.2).
    verified = verify_signature(
        parse_document(sample("read-inventory-response-5.4.xml")), zaz1_resolver
    )
    assert verified.certificate_der is not None
    leaf = check_signer_binding(
        verified.certificate_der,
        DCC,
        at=NOW,
        anchors=[_z1_anchor()],
        policies=[ZAZ1_ORGANISATION_POLICY],
        roles=DCC_XML_SIGNING_ROLES,
    )
    assert leaf.role is RemotePartyRole.DSP_XML_SIGN


def test_dcc_boxed_xml_sign_certificate_binds_only_when_pinned() -> None:
    # xml-sign-90B3D51F30010000-ds names Z1 as issuer but Z1's key did not sign it (§0 fact 6).
    pem = zaz1_entry("xml-sign-90B3D51F30010000-ds")["certificate"].encode()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    options = {"at": NOW, "anchors": [_z1_anchor()], "policies": [ZAZ1_ORGANISATION_POLICY]}
    with pytest.raises(SignerNotBound, match="chain"):
        check_signer_binding(der, SUPPLIER, **options)  # type: ignore[arg-type]
    leaf = check_signer_binding(der, SUPPLIER, pinned={der}, **options)  # type: ignore[arg-type]
    assert leaf.entity_eui == SUPPLIER


def test_zaz1_supplier_certificate_binds_while_valid_and_not_after_expiry() -> None:
    # Z1-supplier-ds chains to Z1 and expired 2025-10-29 (§3.2): only time differs.
    pem = zaz1_entry("Z1-supplier-ds")["certificate"].encode()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    options = {
        "anchors": [_z1_anchor()],
        "policies": [ZAZ1_ORGANISATION_POLICY],
        "roles": {RemotePartyRole.SUPPLIER},
    }
    early = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert check_signer_binding(der, SUPPLIER, at=early, **options).role is RemotePartyRole.SUPPLIER  # type: ignore[arg-type]
    with pytest.raises(SignerNotBound, match="not valid at"):
        check_signer_binding(der, SUPPLIER, at=NOW, **options)  # type: ignore[arg-type]
