"""Eligibility: commissioned, on TCoS, nothing in flight, an approved model and firmware."""

from __future__ import annotations

from dataclasses import replace

import pytest

from openecos.eui import Eui64
from openecos.migration import (
    ApprovedModel,
    ApprovedModels,
    EligibilityConfig,
    IneligibleReason,
    InvalidMigrationInput,
    assess,
    count_by_reason,
)
from openecos.store.enums import CosCredentialState, DeviceStatus, DeviceType
from openecos.store.records import Device

APPROVED = ApprovedModels(
    (
        ApprovedModel("Acme", "E100", frozenset({"1.2", "1.3"})),
        ApprovedModel("Gasco", "G7"),
    )
)
METER = Device(
    eui=Eui64.parse("00DB000000000001"),
    device_type=DeviceType.ESME,
    status=DeviceStatus.COMMISSIONED,
    mpxn="1000000000001",
    manufacturer="Acme",
    model="E100",
    firmware_version="1.3",
    credential_state=CosCredentialState.TCOS,
)


def test_a_commissioned_tcos_meter_of_an_approved_model_is_eligible() -> None:
    verdict = assess(METER, command_in_flight=False, approved=APPROVED)
    assert verdict.eligible
    assert verdict.reason is None


def test_model_names_compare_without_case_or_edge_spaces() -> None:
    device = replace(METER, manufacturer=" ACME", model="e100 ")
    assert assess(device, command_in_flight=False, approved=APPROVED).eligible


def test_any_firmware_when_the_list_names_none() -> None:
    device = replace(METER, manufacturer="Gasco", model="G7", firmware_version=None)
    assert assess(device, command_in_flight=False, approved=APPROVED).eligible


CASES = [
    ({"device_type": DeviceType.IHD}, False, IneligibleReason.DEVICE_TYPE),
    ({"status": DeviceStatus.INSTALLED_NOT_COMMISSIONED}, False, IneligibleReason.NOT_COMMISSIONED),
    ({"status": DeviceStatus.SUSPENDED}, False, IneligibleReason.NOT_COMMISSIONED),
    (
        {"credential_state": CosCredentialState.ECOS, "born_ecos": True},
        False,
        IneligibleReason.BORN_ECOS,
    ),
    ({"credential_state": CosCredentialState.ECOS}, False, IneligibleReason.ALREADY_ECOS),
    ({}, True, IneligibleReason.COMMAND_IN_FLIGHT),
    ({"model": "E200"}, False, IneligibleReason.MODEL_NOT_APPROVED),
    ({"firmware_version": "1.1"}, False, IneligibleReason.FIRMWARE_NOT_APPROVED),
    ({"firmware_version": None}, False, IneligibleReason.FIRMWARE_NOT_APPROVED),
]


@pytest.mark.parametrize(("changes", "in_flight", "reason"), CASES)
def test_each_rule_names_its_reason(
    changes: dict[str, object], in_flight: bool, reason: IneligibleReason
) -> None:
    verdict = assess(replace(METER, **changes), command_in_flight=in_flight, approved=APPROVED)  # type: ignore[arg-type]
    assert verdict.reasons == (reason,)
    assert verdict.reason is reason


def test_every_reason_is_named_and_the_first_counts() -> None:
    device = replace(METER, status=DeviceStatus.DECOMMISSIONED, model="E200")
    verdict = assess(device, command_in_flight=True, approved=APPROVED)
    assert verdict.reasons == (
        IneligibleReason.NOT_COMMISSIONED,
        IneligibleReason.COMMAND_IN_FLIGHT,
        IneligibleReason.MODEL_NOT_APPROVED,
    )
    eligible = assess(METER, command_in_flight=False, approved=APPROVED)
    assert count_by_reason([verdict, verdict, eligible]) == {IneligibleReason.NOT_COMMISSIONED: 2}


def test_only_in_flight_is_transient() -> None:
    assert [r for r in IneligibleReason if r.transient] == [IneligibleReason.COMMAND_IN_FLIGHT]


def test_device_types_are_configuration() -> None:
    device = replace(METER, device_type=DeviceType.CHF)
    config = EligibilityConfig(frozenset({DeviceType.CHF}))
    assert assess(device, command_in_flight=False, approved=APPROVED, config=config).eligible


def test_a_model_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidMigrationInput):
        ApprovedModels((ApprovedModel("Acme", "E100"), ApprovedModel("acme", "E100 ")))
