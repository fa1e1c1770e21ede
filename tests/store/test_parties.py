"""Parties, user IDs, MPIDs and certificates, including the split supplier."""

from __future__ import annotations

import pytest

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.store import (
    DuplicateKey,
    InvalidRecord,
    KnownCertificate,
    Mpid,
    NotFound,
    Party,
    PartyUser,
    ReferenceMissing,
    Store,
    UserRole,
)

IS, GS = UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER
USER_E = Eui64.parse("90B3D51F30010000")
USER_G = Eui64.parse("90B3D51F30010001")
OTHER = Eui64.parse("90B3D51F30030000")


def split_supplier(store: Store) -> None:
    """One party, two user IDs (electricity, gas), two MPIDs."""
    store.parties.add_party(Party("ACME", "Acme Energy"))
    store.parties.add_user(PartyUser(USER_E, "ACME", frozenset({IS})))
    store.parties.add_user(PartyUser(USER_G, "ACME", frozenset({GS})))
    store.parties.add_mpid(Mpid("ACME", "ACME", USER_E, IS))
    store.parties.add_mpid(Mpid("ACMG", "ACME", USER_G, GS))


def test_split_supplier_maps_each_mpid_to_its_own_user(store: Store) -> None:
    split_supplier(store)
    assert store.parties.get_mpid("ACME").user_id == USER_E
    assert store.parties.get_mpid("ACMG").user_id == USER_G
    assert {u.user_id for u in store.parties.users_of("ACME")} == {USER_E, USER_G}
    assert [m.mpid for m in store.parties.mpids_of("ACME")] == ["ACME", "ACMG"]
    assert store.parties.party_of_user(USER_E) == store.parties.party_of_user(USER_G)
    assert [m.mpid for m in store.parties.mpids_of_user(USER_G)] == ["ACMG"]


def test_user_roles_round_trip(store: Store) -> None:
    store.parties.add_party(Party("DNO", "A distributor"))
    user = PartyUser(
        OTHER, "DNO", frozenset({UserRole.ELECTRICITY_DISTRIBUTOR, UserRole.OTHER_USER})
    )
    store.parties.add_user(user)
    assert store.parties.get_user(OTHER) == user


def test_mpid_through_a_user_of_another_party_is_refused(store: Store) -> None:
    split_supplier(store)
    store.parties.add_party(Party("RIVAL", "Rival Energy"))
    with pytest.raises(ReferenceMissing):
        store.parties.add_mpid(Mpid("RIVL", "RIVAL", USER_E, IS))


def test_mpid_in_a_role_its_user_lacks_is_refused(store: Store) -> None:
    split_supplier(store)
    with pytest.raises(ReferenceMissing):
        store.parties.add_mpid(Mpid("ACMX", "ACME", USER_E, GS))


def test_duplicates_and_unknowns_are_typed(store: Store) -> None:
    split_supplier(store)
    with pytest.raises(DuplicateKey):
        store.parties.add_party(Party("ACME", "again"))
    with pytest.raises(DuplicateKey):
        store.parties.add_user(PartyUser(USER_E, "ACME", frozenset({IS})))
    with pytest.raises(ReferenceMissing):
        store.parties.add_user(PartyUser(OTHER, "NOBODY", frozenset({IS})))
    with pytest.raises(NotFound):
        store.parties.get_mpid("ZZZZ")
    with pytest.raises(NotFound):
        store.parties.party_of_user(OTHER)


@pytest.mark.parametrize("bad", ["acme", "ACM", "ACMEE", "AC-E", ""])
def test_mpid_format_is_checked(bad: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        Mpid(bad, "ACME", USER_E, IS)
    assert info.value.field == "mpid"


def _cert(serial: int, der: bytes, issuer: str = "CN=Z1,OU=07") -> KnownCertificate:
    return KnownCertificate(
        der=der,
        issuer_name=issuer,
        serial=serial,
        subject_eui=USER_E,
        role=RemotePartyRole.XML_SIGN,
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
    )


def test_certificate_found_by_issuer_serial_in_any_spelling(store: Store) -> None:
    # docs/duis-xmldsig-smki.md §4: compare issuers ignoring ", " versus "," and type case.
    serial = 27572613927499351639968579586655397031  # > 2**64, as real serials are
    cert = _cert(serial, b"\x30\x03\x02\x01\x01")
    store.certificates.add(cert)
    for spelling in ("CN=Z1,OU=07", "CN=Z1, OU=07", "cn = Z1 ,ou=07"):
        assert store.certificates.by_issuer_serial(spelling, serial) == cert
    with pytest.raises(NotFound):
        store.certificates.by_issuer_serial("CN=Z2,OU=07", serial)
    with pytest.raises(NotFound):
        store.certificates.by_issuer_serial("CN=Z1,OU=07", serial + 1)
    assert store.certificates.by_fingerprint(cert.fingerprint) == cert


def test_certificate_found_by_subject_and_role(store: Store) -> None:
    xml_sign = _cert(1, b"\x30\x01\x01")
    supplier_ka = KnownCertificate(
        der=b"\x30\x01\x02",
        issuer_name="CN=Z1,OU=07",
        serial=2,
        subject_eui=USER_E,
        role=RemotePartyRole.SUPPLIER,
        key_usage=KeyUsage.KEY_AGREEMENT,
    )
    store.certificates.add(xml_sign)
    store.certificates.add(supplier_ka)
    store.certificates.add(xml_sign)  # the same DER again is a no-op
    assert set(store.certificates.by_subject(USER_E)) == {xml_sign, supplier_ka}
    assert store.certificates.by_subject(USER_E, RemotePartyRole.SUPPLIER) == [supplier_ka]
    assert store.certificates.by_subject(USER_E, key_usage=KeyUsage.DIGITAL_SIGNATURE) == [xml_sign]
    assert store.certificates.by_subject(OTHER) == []


def test_two_certificates_with_one_issuer_serial_are_refused(store: Store) -> None:
    store.certificates.add(_cert(7, b"\x30\x01\x01"))
    with pytest.raises(DuplicateKey):
        store.certificates.add(_cert(7, b"\x30\x01\x02", issuer="CN=Z1, OU=07"))
