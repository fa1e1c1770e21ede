"""The estate plan: participants, MPANs, seeded draws (openecos.sandbox.plan)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.sandbox import SANDBOX_PARTICIPANTS, is_valid_mpan, mpan_check_digit, plan_estate
from openecos.store import CosCredentialState, DeviceType, UserRole


def test_mpan_check_digit_follows_the_prime_weights() -> None:
    # 12 ones weighted by 3,5,7,13,17,19,23,29,31,37,41,43 sum to 268; 268 % 11 = 4.
    assert mpan_check_digit("1" * 12) == 4
    assert is_valid_mpan("1" * 12 + "4")
    assert not is_valid_mpan("1" * 12 + "5")


@settings(max_examples=50)
@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(1, 9))
def test_changing_the_check_digit_invalidates_an_mpan(first: str, delta: int) -> None:
    good = first + str(mpan_check_digit(first))
    bad = first + str((int(good[-1]) + delta) % 10)
    assert is_valid_mpan(good)
    assert not is_valid_mpan(bad)


def test_check_digit_needs_twelve_digits() -> None:
    with pytest.raises(ValueError):
        mpan_check_digit("12345")


def test_same_seed_same_estate_other_seed_other_estate() -> None:
    assert plan_estate(50, ecos_fraction=0.3, seed=4) == plan_estate(50, ecos_fraction=0.3, seed=4)
    assert plan_estate(50, ecos_fraction=0.3, seed=4) != plan_estate(50, ecos_fraction=0.3, seed=5)


def test_plan_has_the_ecos_fraction_unique_mpxns_and_fuel_matched_suppliers() -> None:
    plan = plan_estate(400, ecos_fraction=0.25, seed=9)
    assert sum(m.credential_state is CosCredentialState.ECOS for m in plan) == 100
    assert len({m.mpxn for m in plan}) == len({m.eui for m in plan}) == 400
    assert {m.device_type for m in plan} == {DeviceType.ESME, DeviceType.GSME}
    for meter in plan:
        if meter.device_type is DeviceType.ESME:
            assert is_valid_mpan(meter.mpxn)
            assert UserRole.IMPORT_SUPPLIER in meter.supplier.roles
        else:
            assert len(meter.mpxn) == 10 and meter.mpxn.isdigit()
            assert UserRole.GAS_SUPPLIER in meter.supplier.roles


def test_supplier_a_is_split_across_two_user_ids_with_an_mpid_each() -> None:
    supplier_a = SANDBOX_PARTICIPANTS[0]
    assert len(supplier_a.users) == 2 and len(supplier_a.mpids) == 2
    assert len({m.user_id for m in supplier_a.mpids}) == 2
    suppliers_of_a = {
        m.supplier.user_id
        for m in plan_estate(200, ecos_fraction=0, seed=1)
        if m.supplier_mpid.startswith("OEA")
    }
    assert suppliers_of_a == {u.user_id for u in supplier_a.users}


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_ecos_fraction_outside_zero_to_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError):
        plan_estate(10, ecos_fraction=fraction, seed=1)
