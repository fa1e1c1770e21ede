"""The RTDS 6.23, TransCoSByTransCoS and 6.24.1 command vectors fed to a meter in the RTDS state.

Each response is compared with the RTDS response vector of the same folder:
everything the signature covers must be byte-identical (the signature itself
cannot be, docs/gbcs-cs02b.md §3.1: randomised ECDSA and an unpublished
device key), and the signature must verify with the meter's key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openecos.device import (
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    OutputKind,
    Phase,
    advance,
    handle,
    phase_of,
)
from openecos.gbcs import decode_frame, verify_signature
from openecos.gbcs.codes import RemotePartyRole
from tests.device.rtds import IMMEDIATE, RTDS_NOW, TCOS, rtds_meter, rtds_profile, zaz1_certificate
from tests.reference import RTDS_623, RTDS_CS02A, RTDS_TCOS, rtds_hex

FUTURE = "CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX"
CANCEL = "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_COMMAND_GBCS.HEX"
ALERT = "CS02bSupplierByTransCoS_6.23_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX"
TCOS_COMMAND = "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX"
EXECUTION = datetime(2030, 1, 2, tzinfo=UTC)


def _assert_same_as_vector(message: bytes, folder: str, name: str, signer_key: object) -> None:
    produced = decode_frame(message)
    expected = decode_frame(rtds_hex(folder, name))
    assert bytes(produced.signed_bytes) == bytes(expected.signed_bytes)
    verify_signature(produced, signer_key.public_key())  # type: ignore[attr-defined]


def _supplier2_ids() -> list[bytes | None]:
    return [
        zaz1_certificate(n).subject_key_identifier
        for n in ("Z1-supplier2-ds", "Z1-supplier2-ka", "Z1-supplier2PP-ka")
    ]


def _supplier_cell_ids(state: object) -> list[bytes]:
    cells = (SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, SUPPLIER_KA_TOP_UP_CELL)
    return [state.cell(c).subject_key_id for c in cells]  # type: ignore[attr-defined]


def test_immediate_623_is_answered_as_the_rtds_response_and_installs_supplier2() -> None:
    profile, signer = rtds_profile()
    meter = rtds_meter(profile)
    transition = handle(meter, rtds_hex(RTDS_623, IMMEDIATE), RTDS_NOW, profile)
    assert transition.rejection is None
    (output,) = transition.outputs
    assert output.kind is OutputKind.RESPONSE and output.recipient == TCOS
    assert output.originator_counter == 6001
    _assert_same_as_vector(
        output.message,
        RTDS_623,
        "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX",
        signer,
    )
    assert _supplier_cell_ids(transition.state) == _supplier2_ids()
    assert transition.state.seq_number(RemotePartyRole.TRANSITIONAL_COS) == 6001
    assert transition.state.seq_number(RemotePartyRole.SUPPLIER) == 0


def test_trans_cos_by_trans_cos_is_answered_as_the_rtds_response_and_replaces_the_anchor() -> None:
    profile, signer = rtds_profile()
    meter = rtds_meter(profile)
    transition = handle(meter, rtds_hex(RTDS_TCOS, TCOS_COMMAND), RTDS_NOW, profile)
    assert transition.rejection is None
    (output,) = transition.outputs
    _assert_same_as_vector(
        output.message, RTDS_TCOS, "CS02bTransCoSByTransCoS_NA_SUCCESS_RESPONSE_GBCS.HEX", signer
    )
    anchor = transition.state.cell(TRANSITIONAL_COS_CELL)
    assert anchor is not None
    assert anchor.der == zaz1_certificate("Z1b-transitionalCoS-ds").der


def test_after_migration_the_old_anchor_no_longer_authorises() -> None:
    profile, _ = rtds_profile()
    meter = rtds_meter(profile)
    migrated = handle(meter, rtds_hex(RTDS_TCOS, TCOS_COMMAND), RTDS_NOW, profile).state
    # The 6.23 vectors are signed by Z1-transitionalCoS-ds, now replaced by Z1b.
    transition = handle(migrated, rtds_hex(RTDS_623, IMMEDIATE), RTDS_NOW, profile)
    assert transition.rejection is not None
    assert transition.rejection.reason.name == "SIGNATURE_INVALID"
    assert transition.state == migrated


def test_future_dated_623_is_accepted_then_executes_with_the_rtds_alert() -> None:
    profile, signer = rtds_profile()
    meter = rtds_meter(profile)
    accepted = handle(meter, rtds_hex(RTDS_623, FUTURE), RTDS_NOW, profile)
    (response,) = accepted.outputs
    _assert_same_as_vector(
        response.message,
        RTDS_623,
        "CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS_RESPONSE_GBCS.HEX",
        signer,
    )
    assert phase_of(accepted.state) is Phase.PENDING
    assert _supplier_cell_ids(accepted.state) == _supplier_cell_ids(meter)

    early = advance(accepted.state, EXECUTION - timedelta(seconds=1), profile)
    assert early.outputs == () and early.state == accepted.state

    executed = advance(accepted.state, EXECUTION, profile)
    (alert,) = executed.outputs
    assert alert.kind is OutputKind.ALERT and alert.recipient == TCOS
    assert alert.originator_counter == 2001
    _assert_same_as_vector(alert.message, RTDS_623, ALERT, signer)
    assert phase_of(executed.state) is Phase.IDLE
    assert executed.state.alert_counter == 2002
    assert _supplier_cell_ids(executed.state) == _supplier2_ids()


def test_cancellation_623_is_answered_as_the_rtds_response_and_drops_the_pending_command() -> None:
    profile, signer = rtds_profile()
    meter = rtds_meter(profile)
    accepted = handle(meter, rtds_hex(RTDS_623, FUTURE), RTDS_NOW, profile).state
    cancelled = handle(accepted, rtds_hex(RTDS_623, CANCEL), RTDS_NOW, profile)
    (response,) = cancelled.outputs
    _assert_same_as_vector(
        response.message,
        RTDS_623,
        "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_RESPONSE_GBCS.HEX",
        signer,
    )
    assert cancelled.state.pending is None
    later = advance(cancelled.state, EXECUTION + timedelta(days=1), profile)
    assert later.outputs == ()
    assert _supplier_cell_ids(later.state) == _supplier_cell_ids(meter)


def test_cancellation_alone_is_acknowledged_and_changes_no_cell() -> None:
    profile, signer = rtds_profile()
    meter = rtds_meter(profile)
    transition = handle(meter, rtds_hex(RTDS_623, CANCEL), RTDS_NOW, profile)
    (response,) = transition.outputs
    _assert_same_as_vector(
        response.message,
        RTDS_623,
        "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_RESPONSE_GBCS.HEX",
        signer,
    )
    assert transition.state.cells == meter.cells


def test_credentials_read_reproduces_the_rtds_cs02a_response_byte_for_byte() -> None:
    # Unsigned and MACed (deterministic), so the whole frame can match.
    profile, _ = rtds_profile()
    meter = rtds_meter(profile)
    command = rtds_hex(RTDS_CS02A, "CS02aMAC_6.24.1_SUCCESS_COMMAND_GBCS.HEX")
    transition = handle(meter, command, RTDS_NOW, profile)
    (output,) = transition.outputs
    assert output.message == rtds_hex(RTDS_CS02A, "CS02aMAC_6.24.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert transition.state == meter
