"""Registration data: the registered supplier of an MPxN at an instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openecos.eui import Eui64
from openecos.store import (
    InvalidRecord,
    Mpid,
    OverlappingRegistration,
    Party,
    PartyUser,
    ReferenceMissing,
    Registration,
    Store,
    UserRole,
)
from tests.store.test_parties import USER_E, USER_G, split_supplier

MPAN = "1200023305963"
MPRN = "7452060701"
JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
MAR = datetime(2024, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


@pytest.fixture
def registered(store: Store) -> Store:
    split_supplier(store)
    store.parties.add_party(Party("NEW", "New Energy"))
    new_user = Eui64.from_int(int(USER_E) + 0x100)
    store.parties.add_user(PartyUser(new_user, "NEW", frozenset({UserRole.IMPORT_SUPPLIER})))
    store.parties.add_mpid(Mpid("NEWE", "NEW", new_user, UserRole.IMPORT_SUPPLIER))
    store.registrations.add(Registration(MPAN, "ACME", JAN, FEB))
    store.registrations.add(Registration(MPAN, "NEWE", FEB, None))
    store.registrations.add(Registration(MPRN, "ACMG", JAN, None))
    return store


def test_lookup_honours_half_open_boundaries(registered: Store) -> None:
    at = registered.registrations.at
    assert at(MPAN, JAN - US) is None
    assert at(MPAN, JAN).supplier_mpid == "ACME"  # type: ignore[union-attr]
    assert at(MPAN, FEB - US).supplier_mpid == "ACME"  # type: ignore[union-attr]
    assert at(MPAN, FEB).supplier_mpid == "NEWE"  # type: ignore[union-attr]
    assert at(MPAN, datetime(2999, 1, 1, tzinfo=UTC)).supplier_mpid == "NEWE"  # type: ignore[union-attr]
    assert at("1200023305964", FEB) is None


def test_lookup_accepts_any_timezone_for_the_same_instant(registered: Store) -> None:
    from zoneinfo import ZoneInfo

    just_before_feb = (FEB - US).astimezone(ZoneInfo("Asia/Tokyo"))
    assert registered.registrations.at(MPAN, just_before_feb).supplier_mpid == "ACME"  # type: ignore[union-attr]


def test_registered_supplier_gives_the_mpids_own_user_for_a_split_supplier(
    registered: Store,
) -> None:
    electricity = registered.registrations.registered_supplier(MPAN, JAN)
    gas = registered.registrations.registered_supplier(MPRN, JAN)
    assert electricity is not None and gas is not None
    assert (electricity.user_id, electricity.party_id) == (USER_E, "ACME")
    assert (gas.user_id, gas.party_id) == (USER_G, "ACME")
    assert registered.registrations.registered_supplier(MPAN, JAN - US) is None


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (JAN, FEB),  # identical
        (JAN - US, JAN + US),  # straddles the start
        (FEB - US, MAR),  # straddles the change
        (MAR, None),  # inside the open interval
        (JAN - timedelta(days=1), None),  # covers everything
    ],
)
def test_overlapping_interval_is_refused(
    registered: Store, start: datetime, end: datetime | None
) -> None:
    before = registered.registrations.history(MPAN)
    with pytest.raises(OverlappingRegistration):
        registered.registrations.add(Registration(MPAN, "ACME", start, end))
    assert registered.registrations.history(MPAN) == before


def test_adjacent_interval_is_accepted(registered: Store) -> None:
    registered.registrations.add(Registration(MPAN, "ACME", JAN - timedelta(days=9), JAN))
    assert registered.registrations.at(MPAN, JAN - US).supplier_mpid == "ACME"  # type: ignore[union-attr]


def test_overlap_within_one_batch_is_refused_and_nothing_is_written(store: Store) -> None:
    split_supplier(store)
    batch = [Registration(MPAN, "ACME", JAN, MAR), Registration(MPAN, "ACME", FEB, None)]
    with pytest.raises(OverlappingRegistration):
        store.registrations.add_many(batch)
    assert store.registrations.history(MPAN) == []


def test_change_of_supplier_closes_the_open_interval(registered: Store) -> None:
    registered.registrations.change_supplier(MPRN, "ACMG", MAR)
    history = registered.registrations.history(MPRN)
    assert [(r.effective_from, r.effective_to) for r in history] == [(JAN, MAR), (MAR, None)]
    with pytest.raises(OverlappingRegistration):
        registered.registrations.change_supplier(MPRN, "ACMG", FEB)


def test_supplier_role_must_fit_the_mpxn(registered: Store) -> None:
    with pytest.raises(InvalidRecord):
        registered.registrations.add(Registration("1200023305999", "ACMG", JAN, None))
    with pytest.raises(ReferenceMissing):
        registered.registrations.add(Registration("1200023305999", "NONE", JAN, None))


@pytest.mark.parametrize("bad", ["12345", "12000233059631", "12000A3305963", " 1200023305963"])
def test_mpxn_format_is_checked(bad: str) -> None:
    with pytest.raises(InvalidRecord):
        Registration(bad, "ACME", JAN)


def test_empty_or_naive_intervals_are_refused() -> None:
    with pytest.raises(InvalidRecord):
        Registration(MPAN, "ACME", FEB, FEB)
    with pytest.raises(InvalidRecord):
        Registration(MPAN, "ACME", datetime(2024, 1, 1))
