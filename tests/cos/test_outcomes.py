"""Device answers matched to their 6.23 commands, verified, and what follows from them.

Vectors: reference/rtds/6.23_CS02bSupplierByTransCoS/: the IMMEDIATE, FUTURE_DATED and
CANCELLATION SUCCESS RESPONSE files and the 8F66 FUTURE_DATED SUCCESS ALERT, signed by
the test meter 00DB1234567890A0 (reference/keystore/devices/00db1234567890a0-ds.pem),
answering the COMMAND files of the same folder (counters 6001, 6002, 6003).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from openecos.cos import (
    CosParties,
    CosParty,
    DccAlertDue,
    DeviceAlertDue,
    DeviceMessage,
    DeviceMessageKind,
    DeviceMessageProblem,
    DeviceMessageRefused,
    RequestEvent,
    ServiceResponseDue,
    derive_outcome,
    match_command,
    next_status,
    no_response_outcome,
    read_device_message,
    verify_device_message,
)
from openecos.duis import (
    ChangeOfSupplierAlert,
    MmcHeader,
    RequestId,
    ResponseCode,
    SecurityCredentialsUpdatedAlert,
    build_update_security_credentials_alert,
    build_update_security_credentials_cos_rsp,
)
from openecos.eui import Eui64
from openecos.gbcs import (
    RTDS_RESPONSE_DATE_TIME,
    AlertCode,
    CraFlag,
    MessageCode,
    StatusCode,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
    build_apdu,
)
from openecos.smki import SmkiCertificate
from openecos.store.enums import CommandStatus, RequestStatus
from openecos.store.records import CommandRecord, TrustAnchorCell
from tests.cos.rtds import (
    CANCELLATION_COMMAND,
    CANCELLATION_RESPONSE,
    DEVICE,
    ECOS,
    FUTURE_DATED_ALERT,
    FUTURE_DATED_COMMAND,
    FUTURE_DATED_RESPONSE,
    IMMEDIATE_COMMAND,
    IMMEDIATE_RESPONSE,
    NOW,
    PARTIES,
    SUPPLIER1,
    SUPPLIER2,
    TCOS,
    device_certificate,
    frame,
    rtds_command,
)
from tests.reference import RTDS_623, rtds_hex

REQUEST = RequestId(SUPPLIER2, DEVICE, 1006)

# (answer, the command it answers, that command's counter)
PAIRS = [
    pytest.param(IMMEDIATE_RESPONSE, IMMEDIATE_COMMAND, 6001, id="immediate-response"),
    pytest.param(FUTURE_DATED_RESPONSE, FUTURE_DATED_COMMAND, 6002, id="future-dated-response"),
    pytest.param(CANCELLATION_RESPONSE, CANCELLATION_COMMAND, 6003, id="cancellation-response"),
    pytest.param(FUTURE_DATED_ALERT, FUTURE_DATED_COMMAND, 6002, id="8f66-alert"),
]


def command_record(name: str, **changes: object) -> CommandRecord:
    sent = frame(name)
    record = CommandRecord(
        signer=sent.apdu.originator,
        originator_counter=sent.apdu.originator_counter,
        device=sent.apdu.recipient,
        message_code=MessageCode(sent.apdu.message_code),
        payload=sent.raw,
        created_at=NOW,
        request_id=REQUEST.duis,
    )
    return replace(record, **changes)


def message(name: str) -> DeviceMessage:
    return read_device_message(rtds_hex(RTDS_623, name), PARTIES)


@pytest.mark.parametrize(("answer", "command", "counter"), PAIRS)
def test_rtds_answer_matches_its_command_by_cos_party_and_counter(
    answer: str, command: str, counter: int
) -> None:
    received = message(answer)
    assert received.key == (TCOS, counter)
    assert received.cos_party == PARTIES.tcos
    assert received.device == DEVICE
    match_command(received, command_record(command))
    verify_device_message(received, device_certificate("ds").der)


def test_the_alert_is_matched_by_the_outcome_not_its_own_counter() -> None:
    alert = message(FUTURE_DATED_ALERT)
    assert alert.kind is DeviceMessageKind.ALERT
    assert alert.frame.apdu.originator_counter != alert.command_counter
    assert alert.command_counter == frame(FUTURE_DATED_COMMAND).apdu.originator_counter


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"originator_counter": 6002}, DeviceMessageProblem.COMMAND_MISMATCH),
        ({"signer": ECOS}, DeviceMessageProblem.COMMAND_MISMATCH),
        ({"device": Eui64.parse("00DB1234567890A3")}, DeviceMessageProblem.WRONG_DEVICE),
        (
            {"message_code": MessageCode.CS02B_TRANS_COS_BY_TRANS_COS},
            DeviceMessageProblem.COMMAND_MISMATCH,
        ),
    ],
)
def test_an_answer_does_not_match_another_command(
    changes: dict[str, object], problem: DeviceMessageProblem
) -> None:
    with pytest.raises(DeviceMessageRefused) as info:
        match_command(message(IMMEDIATE_RESPONSE), command_record(IMMEDIATE_COMMAND, **changes))
    assert info.value.problem is problem


def test_a_tampered_answer_fails_verification() -> None:
    data = bytearray(rtds_hex(RTDS_623, IMMEDIATE_RESPONSE))
    data[-1] ^= 0x01  # last byte of s
    received = read_device_message(bytes(data), PARTIES)
    with pytest.raises(DeviceMessageRefused) as info:
        verify_device_message(received, device_certificate("ds").der)
    assert info.value.problem is DeviceMessageProblem.SIGNATURE_INVALID


@pytest.mark.parametrize("certificate", ["ka", "garbage"])
def test_only_the_devices_ds_certificate_verifies(certificate: str) -> None:
    der = b"\x30\x00" if certificate == "garbage" else device_certificate("ka").der
    with pytest.raises(DeviceMessageRefused) as info:
        verify_device_message(message(IMMEDIATE_RESPONSE), der)
    assert info.value.problem is DeviceMessageProblem.WRONG_CERTIFICATE


def test_answers_not_addressed_to_a_cos_party_are_refused() -> None:
    others = CosParties(
        tcos=CosParty("other", Eui64.parse("90B3D51F300000AA"), "k1"),
        ecos=CosParty("ecos", ECOS, "k2"),
    )
    with pytest.raises(DeviceMessageRefused) as info:
        read_device_message(rtds_hex(RTDS_623, IMMEDIATE_RESPONSE), others)
    assert info.value.problem is DeviceMessageProblem.UNKNOWN_RECIPIENT


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (rtds_hex(RTDS_623, IMMEDIATE_COMMAND), DeviceMessageProblem.NOT_FROM_DEVICE),
        (b"", DeviceMessageProblem.UNDECODABLE),
        (b"\xdf\x09", DeviceMessageProblem.UNDECODABLE),
    ],
    ids=["a-command", "empty", "truncated"],
)
def test_other_bytes_are_refused_with_a_problem(data: bytes, problem: DeviceMessageProblem) -> None:
    with pytest.raises(DeviceMessageRefused) as info:
        read_device_message(data, PARTIES)
    assert info.value.problem is problem


def _sha1(der: bytes) -> bytes:
    return hashlib.sha1(der).digest()


def test_immediate_success_updates_all_three_cells_and_notifies_both_suppliers() -> None:
    sent = rtds_command(IMMEDIATE_COMMAND)
    outcome = derive_outcome(message(IMMEDIATE_RESPONSE), sent, REQUEST)
    assert outcome.event is RequestEvent.RESPONSE_SUCCESS
    assert next_status(RequestStatus.COMMAND_SENT, outcome.event) is RequestStatus.COMPLETED
    assert outcome.command_status is CommandStatus.SUCCEEDED
    assert outcome.inventory is not None and outcome.inventory.complete
    installed = outcome.inventory.installed
    assert [c.certificate_der for c in installed] == [
        r.replacement_certificate for r in sent.replacements
    ]
    for cell in installed:
        certificate = SmkiCertificate.from_der(cell.certificate_der)
        assert (cell.subject_eui, cell.ski) == (
            certificate.entity_eui,
            certificate.subject_key_identifier,
        )
    response, losing, updated = outcome.due
    assert isinstance(response, ServiceResponseDue)
    assert (response.recipient, response.response_code) == (SUPPLIER2, ResponseCode.I0)
    assert response.gbcs_payload == rtds_hex(RTDS_623, IMMEDIATE_RESPONSE)
    report = response.execution_outcome
    assert report is not None
    assert report.authorising_remote_party_originator_counter == 6001
    assert [r.status for r in report.replacement_outcomes] == [StatusCode.SUCCESS] * 3
    assert [r.new_certificate_hash for r in report.replacement_outcomes] == [
        _sha1(r.replacement_certificate) for r in sent.replacements
    ]
    # The RTDS meter held GITTESTSUPPLIER's (supplier 1's) certificates before.
    assert isinstance(losing, DccAlertDue) and losing.recipient == SUPPLIER1
    assert losing.alert == ChangeOfSupplierAlert(REQUEST)
    assert isinstance(updated, DccAlertDue) and updated.recipient == SUPPLIER2
    assert isinstance(updated.alert, SecurityCredentialsUpdatedAlert)
    assert [c.sha1 for c in updated.alert.certificates] == [
        _sha1(r.replacement_certificate) for r in sent.replacements
    ]
    assert updated.alert.floor_seq_number == 0
    # The report is what the MMC builder takes.
    assert b"UpdateSecurityCredentialsCoSRsp" in build_update_security_credentials_cos_rsp(
        response.mmc_header, report
    )


def test_existing_certificate_hashes_come_from_the_inventory() -> None:
    existing = message(IMMEDIATE_RESPONSE).execution_outcome
    assert existing is not None
    old_ds = existing.replacement_outcomes[0]
    cells = [
        TrustAnchorCell(
            role=old_ds.affected_trust_anchor_cell.remote_party_role,
            key_usage=old_ds.affected_trust_anchor_cell.key_usage,
            cell_usage=old_ds.affected_trust_anchor_cell.cell_usage,
            certificate_der=b"old supplier DS certificate",
            subject_eui=old_ds.existing_subject_unique_id,
            ski=old_ds.existing_subject_key_id,
        )
    ]
    outcome = derive_outcome(
        message(IMMEDIATE_RESPONSE), rtds_command(IMMEDIATE_COMMAND), REQUEST, current_cells=cells
    )
    response = outcome.due[0]
    assert isinstance(response, ServiceResponseDue) and response.execution_outcome is not None
    hashes = [r.existing_certificate_hash for r in response.execution_outcome.replacement_outcomes]
    assert hashes == [_sha1(b"old supplier DS certificate"), None, None]


def test_future_dated_is_accepted_first_then_completed_by_the_alert() -> None:
    sent = rtds_command(FUTURE_DATED_COMMAND)
    accepted = derive_outcome(message(FUTURE_DATED_RESPONSE), sent, REQUEST)
    assert accepted.event is RequestEvent.FUTURE_DATED_ACCEPTED
    assert accepted.command_status is CommandStatus.AWAITING_EXECUTION
    assert accepted.inventory is None
    (response,) = accepted.due
    assert isinstance(response, ServiceResponseDue)
    assert response.execution_outcome is None and response.response_code is ResponseCode.I0

    done = derive_outcome(message(FUTURE_DATED_ALERT), sent, REQUEST)
    state = next_status(RequestStatus.COMMAND_SENT, accepted.event)
    assert next_status(state, done.event) is RequestStatus.COMPLETED
    assert done.command_status is CommandStatus.SUCCEEDED
    assert done.inventory is not None and len(done.inventory.installed) == 3
    alert = done.due[0]
    assert isinstance(alert, DeviceAlertDue)
    assert alert.alert_code is AlertCode.FUTURE_DATED_COMMAND_ACTIONED
    assert alert.mmc_header.message_code is MessageCode.CS02B_UPDATE_SECURITY_CREDENTIALS_ALERT
    assert [type(d) for d in done.due[1:]] == [DccAlertDue, DccAlertDue]
    content = message(FUTURE_DATED_ALERT).content
    assert isinstance(content, UpdateSecurityCredentialsAlert)
    assert b"FutureDatedCommandOutcomeDeviceAlert" in build_update_security_credentials_alert(
        alert.mmc_header, alert.alert_code, content.execution_date_time, alert.execution_outcome
    )


def test_cancellation_response_completes_it_and_cancels_the_pending_one() -> None:
    outcome = derive_outcome(
        message(CANCELLATION_RESPONSE), rtds_command(CANCELLATION_COMMAND), REQUEST
    )
    assert outcome.event is RequestEvent.RESPONSE_SUCCESS
    assert outcome.cancels_pending
    assert outcome.command_status is CommandStatus.SUCCEEDED
    assert next_status(RequestStatus.FUTURE_DATED_PENDING, RequestEvent.CANCELLED) is (
        RequestStatus.CANCELLED
    )


def _rebuilt_response(status: StatusCode) -> bytes:
    """The RTDS immediate response with the KA cell failed (unsigned; not verified here)."""
    received = message(IMMEDIATE_RESPONSE)
    outcome = received.execution_outcome
    assert outcome is not None
    ds, ka, top_up = outcome.replacement_outcomes
    failed = replace(
        ka,
        status_code=status,
        replacing_subject_unique_id=ka.existing_subject_unique_id,
        replacing_subject_key_id=ka.existing_subject_key_id,
    )
    content = UpdateSecurityCredentialsResponse(
        replace(outcome, replacement_outcomes=(ds, failed, top_up))
    )
    return build_apdu(
        cra_flag=CraFlag.RESPONSE,
        originator=DEVICE,
        recipient=TCOS,
        originator_counter=6001,
        message_code=MessageCode.CS02B_SUPPLIER_BY_TRANS_COS,
        content=content,
        signer=None,
        date_time=RTDS_RESPONSE_DATE_TIME,
    ).encode()


def test_partial_failure_records_the_cells_that_changed_and_fails_the_request() -> None:
    received = read_device_message(_rebuilt_response(StatusCode.NO_TRUST_ANCHOR), PARTIES)
    outcome = derive_outcome(received, rtds_command(IMMEDIATE_COMMAND), REQUEST)
    assert outcome.event is RequestEvent.RESPONSE_FAILURE
    assert outcome.command_status is CommandStatus.FAILED
    inventory = outcome.inventory
    assert inventory is not None and not inventory.complete
    assert [c.status for c in inventory.cells] == [
        StatusCode.SUCCESS,
        StatusCode.NO_TRUST_ANCHOR,
        StatusCode.SUCCESS,
    ]
    assert [c.installed is None for c in inventory.cells] == [False, True, False]
    updated = outcome.due[-1]
    assert isinstance(updated, DccAlertDue)
    assert isinstance(updated.alert, SecurityCredentialsUpdatedAlert)
    assert len(updated.alert.certificates) == 2


def test_a_not_actioned_alert_fails_the_request() -> None:
    alert = message(FUTURE_DATED_ALERT)
    content = alert.content
    assert isinstance(content, UpdateSecurityCredentialsAlert)
    failed = replace(
        alert, content=replace(content, alert_code=AlertCode.FUTURE_DATED_COMMAND_NOT_ACTIONED)
    )
    outcome = derive_outcome(failed, rtds_command(FUTURE_DATED_COMMAND), REQUEST)
    assert outcome.event is RequestEvent.ALERT_FAILURE
    assert outcome.command_status is CommandStatus.FAILED
    assert next_status(RequestStatus.FUTURE_DATED_PENDING, outcome.event) is RequestStatus.FAILED


@pytest.mark.parametrize(
    ("answer", "command"),
    [
        (IMMEDIATE_RESPONSE, FUTURE_DATED_COMMAND),  # seq number 6001 vs 6002
        (FUTURE_DATED_RESPONSE, IMMEDIATE_COMMAND),  # immediate answered without outcome
        (FUTURE_DATED_ALERT, IMMEDIATE_COMMAND),  # alert for a command not future-dated
    ],
)
def test_an_answer_contradicting_the_command_is_refused(answer: str, command: str) -> None:
    with pytest.raises(DeviceMessageRefused) as info:
        derive_outcome(message(answer), rtds_command(command), REQUEST)
    assert info.value.problem is DeviceMessageProblem.OUTCOME_INCONSISTENT


def test_an_outcome_naming_other_certificates_is_refused() -> None:
    sent = rtds_command(IMMEDIATE_COMMAND)
    ds, ka, top_up = sent.replacements
    swapped = replace(
        sent,
        replacements=(replace(ds, replacement_certificate=ka.replacement_certificate), ka, top_up),
    )
    with pytest.raises(DeviceMessageRefused) as info:
        derive_outcome(message(IMMEDIATE_RESPONSE), swapped, REQUEST)
    assert info.value.problem is DeviceMessageProblem.OUTCOME_INCONSISTENT


@pytest.mark.parametrize(
    ("awaiting_alert", "code"), [(False, ResponseCode.E21), (True, ResponseCode.E30)]
)
def test_silence_leaves_the_command_outcome_unknown(
    awaiting_alert: bool, code: ResponseCode
) -> None:
    outcome, response_code = no_response_outcome(REQUEST, awaiting_alert=awaiting_alert)
    assert response_code is code
    assert outcome.command_status is CommandStatus.OUTCOME_UNKNOWN
    start = RequestStatus.FUTURE_DATED_PENDING if awaiting_alert else RequestStatus.COMMAND_SENT
    assert next_status(start, outcome.event) is RequestStatus.FAILED


def test_mmc_header_names_device_requester_and_counter() -> None:
    outcome = derive_outcome(message(IMMEDIATE_RESPONSE), rtds_command(IMMEDIATE_COMMAND), REQUEST)
    response = outcome.due[0]
    assert isinstance(response, ServiceResponseDue)
    assert response.mmc_header == MmcHeader(DEVICE, SUPPLIER2, 6001)
