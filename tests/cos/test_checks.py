"""Every 6.23 check fails with its own name and DUIS code; the first failure wins.

The certificates are those of the RTDS 6.23 immediate command (tests/cos/rtds.py,
reference/rtds/6.23_CS02bSupplierByTransCoS/...IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from openecos.cos import (
    CHECK_RESPONSE_CODES,
    CheckConfig,
    CheckInputs,
    CosCheck,
    CosRejected,
    check_request,
    registration_instant,
)
from openecos.duis import ExecutionKind, ReplacementCertificatesCoS, ResponseCode
from openecos.eui import Eui64
from openecos.gbcs.cs02b import CANCELLATION_DATE_TIME
from openecos.smki import SmkiCertificate
from openecos.store.enums import CommandStatus, DeviceStatus, DeviceType, UserRole
from tests.cos.rtds import (
    CANCEL,
    DEVICE,
    FUTURE,
    NOW,
    SUPPLIER1,
    SUPPLIER2,
    device,
    device_certificate,
    inputs,
    registered,
    replacement_certificates,
    service_request,
    user,
    zaz1_certificate_der,
)

OTHER = Eui64.parse("90B3D51F300A0000")


def _body(**changes: object) -> Callable[[], CheckInputs]:
    def make() -> CheckInputs:
        request = service_request()
        return inputs(replace(request, body=replace(request.body, **changes)))

    return make


def _swap_certificates(**changes: bytes | None) -> Callable[[], CheckInputs]:
    def make() -> CheckInputs:
        ds, ka, top_up = replacement_certificates()
        certs = replace(ReplacementCertificatesCoS(ds, ka, top_up), **changes)
        return _body(replacement_certificates=certs)()

    return make


def _requester_supplier1() -> CheckInputs:
    # The DUIS templates: supplier 1 sends supplier 2's certificates (duis-xmldsig-smki §1.5).
    request = service_request(originator=SUPPLIER1)
    return inputs(
        request, signer=SUPPLIER1, user=user(SUPPLIER1), registered_supplier=registered(SUPPLIER1)
    )


# One row per check: its name, the code the table must give it, and inputs that break it.
ROWS: list[tuple[CosCheck, ResponseCode, Callable[[], CheckInputs]]] = [
    (CosCheck.USER_KNOWN, ResponseCode.E1, lambda: inputs(user=None)),
    (
        CosCheck.USER_ROLE,
        ResponseCode.E2,
        lambda: inputs(user=user(roles=frozenset({UserRole.ELECTRICITY_DISTRIBUTOR}))),
    ),
    (CosCheck.SIGNER_IS_ORIGINATOR, ResponseCode.E1, lambda: inputs(signer=OTHER)),
    (
        CosCheck.EXECUTION_TIME,
        ResponseCode.E062301,
        lambda: inputs(service_request(execution_date_time=NOW - timedelta(seconds=1))),
    ),
    (
        CosCheck.FLOOR_SEQ_NUMBERS,
        ResponseCode.E062301,
        _body(supplier_prepayment_top_up_floor_seq_number=2**64),
    ),
    (CosCheck.REGISTERED_SUPPLIER, ResponseCode.E4, lambda: inputs(registered_supplier=None)),
    (CosCheck.DEVICE_KNOWN, ResponseCode.E19, lambda: inputs(device=None)),
    (
        CosCheck.DEVICE_SERVES_MPXN,
        ResponseCode.E062302,
        lambda: inputs(device=device(mpxn="1312345678999")),
    ),
    (
        CosCheck.DEVICE_TYPE,
        ResponseCode.E11,
        lambda: inputs(device=device(device_type=DeviceType.IHD)),
    ),
    (
        CosCheck.DEVICE_COMMISSIONED,
        ResponseCode.E5,
        lambda: inputs(device=device(status=DeviceStatus.SUSPENDED)),
    ),
    (
        CosCheck.REPLACEMENT_CERTIFICATES,
        ResponseCode.E062303,
        # A key-agreement certificate offered for the digital-signing cell.
        _swap_certificates(digital_signing=replacement_certificates()[1]),
    ),
    (CosCheck.REPLACEMENT_OWNER, ResponseCode.E062304, _requester_supplier1),
    (
        CosCheck.CERTIFICATION_PATH,
        ResponseCode.E062305,
        lambda: inputs(trust_anchors=(device_certificate("ds"),)),
    ),
    (
        CosCheck.CERTIFICATE_VALIDITY,
        ResponseCode.E062305,
        lambda: inputs(now=datetime(2040, 1, 1, tzinfo=UTC)),
    ),
    (
        CosCheck.COMMAND_IN_FLIGHT,
        ResponseCode.E062306,
        lambda: inputs(in_flight_command=CommandStatus.SENT),
    ),
]


def test_every_check_has_a_row_and_a_code() -> None:
    assert [row[0] for row in ROWS] == list(CosCheck)
    assert set(CHECK_RESPONSE_CODES) == set(CosCheck)


@pytest.mark.parametrize(("check", "code", "make"), ROWS, ids=[r[0].value for r in ROWS])
def test_check_fails_with_its_name_and_code(
    check: CosCheck, code: ResponseCode, make: Callable[[], CheckInputs]
) -> None:
    with pytest.raises(CosRejected) as info:
        check_request(make())
    assert info.value.check is check
    assert info.value.response_code is code
    assert CHECK_RESPONSE_CODES[check] is code
    assert code.is_error


def test_the_unbroken_inputs_pass() -> None:
    checked = check_request(inputs())
    assert checked.device == DEVICE
    assert checked.requester == SUPPLIER2
    assert checked.kind is ExecutionKind.IMMEDIATE


def test_first_failure_wins_in_enum_order() -> None:
    # Everything wrong at once: the identity checks answer before anything about the device.
    broken = inputs(
        user=None,
        signer=OTHER,
        device=None,
        registered_supplier=None,
        in_flight_command=CommandStatus.SENT,
        trust_anchors=(),
    )
    with pytest.raises(CosRejected) as info:
        check_request(broken)
    assert info.value.check is CosCheck.USER_KNOWN
    # An unregistered requester learns nothing about the device (it does not exist here).
    with pytest.raises(CosRejected) as info:
        check_request(inputs(registered_supplier=None, device=None))
    assert info.value.check is CosCheck.REGISTERED_SUPPLIER
    # A lasting failure is reported rather than the transient "busy".
    with pytest.raises(CosRejected) as info:
        check_request(inputs(in_flight_command=CommandStatus.SENT, trust_anchors=()))
    assert info.value.check is CosCheck.CERTIFICATION_PATH


def test_requester_rule_can_be_turned_off_for_the_duis_templates() -> None:
    made = _requester_supplier1()
    checked = check_request(
        replace(made, config=CheckConfig(require_certificates_of_requester=False))
    )
    assert checked.requester == SUPPLIER1
    assert {r.subject_eui for r in checked.replacements} == {SUPPLIER2}


def test_split_supplier_only_the_user_of_the_registered_mpid_passes() -> None:
    # One party, two MPIDs, two user IDs; the MPAN is registered to MPID SUP2 of user SUPPLIER2.
    party_users = {SUPPLIER2: "SUP2", OTHER: "SUPX"}
    registration = registered(SUPPLIER2, mpid="SUP2")
    config = CheckConfig(require_certificates_of_requester=False)
    outcomes = {}
    for user_id in party_users:
        request = service_request(originator=user_id)
        made = inputs(
            request,
            signer=user_id,
            user=user(user_id),
            registered_supplier=registration,
            config=config,
        )
        try:
            check_request(made)
            outcomes[user_id] = "passed"
        except CosRejected as exc:
            outcomes[user_id] = exc.check.value
    assert outcomes == {SUPPLIER2: "passed", OTHER: CosCheck.REGISTERED_SUPPLIER.value}


def test_future_dated_is_judged_on_the_registration_at_the_execution_date() -> None:
    # SUPPLIER1 holds the MPAN until 2029; SUPPLIER2 from 2029 on. A 6.23 for 2030-01-02.
    change = datetime(2029, 1, 1, tzinfo=UTC)
    now_holder = registered(SUPPLIER1, mpid="SUP1", until=change)
    then_holder = registered(SUPPLIER2, mpid="SUP2", since=change)
    request = service_request(execution_date_time=FUTURE)
    instant = registration_instant(request, NOW)
    assert instant == FUTURE
    assert then_holder.registration.covers(instant)
    checked = check_request(inputs(request, registered_supplier=then_holder))
    assert checked.execution_date_time == FUTURE
    # The supplier of today is not the one that counts, whoever asks.
    with pytest.raises(CosRejected) as info:
        check_request(inputs(request, registered_supplier=now_holder))
    assert info.value.check is CosCheck.REGISTERED_SUPPLIER
    # And an immediate 6.23 from SUPPLIER2 today fails: it is not yet the supplier.
    immediate = service_request()
    assert registration_instant(immediate, NOW) == NOW
    with pytest.raises(CosRejected) as info:
        check_request(inputs(immediate, registered_supplier=now_holder))
    assert info.value.check is CosCheck.REGISTERED_SUPPLIER


def test_cancellation_is_judged_now_and_maps_to_the_gbcs_cancel_time() -> None:
    request = service_request(execution_date_time=CANCEL)
    assert registration_instant(request, NOW) == NOW
    checked = check_request(inputs(request, in_flight_command=CommandStatus.AWAITING_EXECUTION))
    assert checked.kind is ExecutionKind.CANCELLATION
    assert checked.execution_date_time == CANCELLATION_DATE_TIME


@pytest.mark.parametrize(
    "status", [CommandStatus.PREPARED, CommandStatus.SENT, CommandStatus.OUTCOME_UNKNOWN]
)
def test_cancellation_is_refused_while_another_command_is_in_flight(
    status: CommandStatus,
) -> None:
    with pytest.raises(CosRejected) as info:
        check_request(inputs(service_request(execution_date_time=CANCEL), in_flight_command=status))
    assert info.value.check is CosCheck.COMMAND_IN_FLIGHT


def test_future_dated_waits_for_no_pending_command() -> None:
    with pytest.raises(CosRejected) as info:
        check_request(
            inputs(
                service_request(execution_date_time=FUTURE),
                in_flight_command=CommandStatus.AWAITING_EXECUTION,
            )
        )
    assert info.value.check is CosCheck.COMMAND_IN_FLIGHT


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (FUTURE + timedelta(microseconds=1), FUTURE + timedelta(seconds=1)),
        (FUTURE, FUTURE),
    ],
)
def test_future_time_is_whole_seconds_never_earlier(when: datetime, expected: datetime) -> None:
    checked = check_request(inputs(service_request(execution_date_time=when)))
    assert checked.execution_date_time == expected


@pytest.mark.parametrize(
    "when",
    [
        NOW,  # not after now
        CANCELLATION_DATE_TIME,  # would read as "cancel" on the meter
        CANCELLATION_DATE_TIME - timedelta(microseconds=1),  # rounds up to it
        datetime(2030, 1, 2),  # no timezone
    ],
)
def test_unusable_execution_times_are_refused(when: datetime) -> None:
    with pytest.raises(CosRejected) as info:
        check_request(inputs(service_request(execution_date_time=when)))
    assert info.value.check is CosCheck.EXECUTION_TIME


def test_time_checks_are_skipped_when_the_request_disapplies_them() -> None:
    late = datetime(2040, 1, 1, tzinfo=UTC)
    request = service_request(apply_time_based_cpv_checks=False)
    checked = check_request(inputs(request, now=late))
    assert checked.apply_time_based_cpv_checks is False


@pytest.mark.parametrize(
    ("field", "certificate"),
    [
        ("digital_signing", lambda: zaz1_certificate_der("Z1-transitionalCoS-ds")),  # OU 05
        ("key_agreement", lambda: replacement_certificates()[0]),  # DS as KA
        ("key_agreement_top_up", lambda: b"\x30\x03\x02\x01\x00"),  # not a certificate
        ("key_agreement", lambda: zaz1_certificate_der("Z1-supplier-ka")),  # another entity
    ],
)
def test_replacement_certificates_need_role_usage_and_one_owner(
    field: str, certificate: Callable[[], bytes]
) -> None:
    with pytest.raises(CosRejected) as info:
        check_request(_swap_certificates(**{field: certificate()})())
    assert info.value.check is CosCheck.REPLACEMENT_CERTIFICATES


def test_an_unreadable_path_certificate_fails_the_path_check() -> None:
    with pytest.raises(CosRejected) as info:
        check_request(_body(certification_path_certificates=(b"\x30\x00",))())
    assert info.value.check is CosCheck.CERTIFICATION_PATH


def test_a_non_meter_device_type_can_be_allowed_by_configuration() -> None:
    made = inputs(
        device=device(device_type=DeviceType.GSME),
        config=CheckConfig(device_types=frozenset({DeviceType.GSME})),
    )
    assert check_request(made).device == DEVICE


def test_a_device_record_for_another_eui_is_not_the_target() -> None:
    with pytest.raises(CosRejected) as info:
        check_request(inputs(device=device(eui=OTHER)))
    assert info.value.check is CosCheck.DEVICE_KNOWN


def test_registration_for_another_mpxn_proves_nothing() -> None:
    with pytest.raises(CosRejected) as info:
        check_request(inputs(registered_supplier=registered(mpxn="1312345678999")))
    assert info.value.check is CosCheck.REGISTERED_SUPPLIER


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        inputs(now=datetime(2025, 6, 1))


def test_anchor_is_the_z1_ca() -> None:
    # Sanity of the fixture: the path's only certificate is the anchor itself.
    anchor = inputs().trust_anchors[0]
    assert isinstance(anchor, SmkiCertificate)
    assert anchor.is_ca


@pytest.mark.parametrize(
    ("floor", "passes"), [(0, True), (2**64 - 1, True), (-1, False), (2**64, False)]
)
def test_floor_seq_numbers_are_unsigned_64_bit(floor: int, passes: bool) -> None:
    made = _body(supplier_floor_seq_number=floor)()
    if passes:
        assert check_request(made).supplier_floor_seq_number == floor
    else:
        with pytest.raises(CosRejected) as info:
            check_request(made)
        assert info.value.check is CosCheck.FLOOR_SEQ_NUMBERS
