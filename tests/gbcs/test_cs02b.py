"""CS02b contents: every RTDS vector decodes to the values the spec describes and re-encodes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openecos.eui import Eui64
from openecos.gbcs import (
    CANCELLATION_DATE_TIME,
    AlertCode,
    AuthorisingRemotePartyControl,
    CellUsage,
    CraFlag,
    CredentialsReplacementMode,
    DecodeError,
    DecodeReason,
    ExecutionOutcome,
    KeyUsage,
    LengthStyle,
    MessageCodeMismatch,
    RemotePartyRole,
    SeqNumberUsage,
    SpecialistSeqNumber,
    StatusCode,
    TrustAnchorCellIdentifier,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
    build_apdu,
    check_message_code,
    decode_frame,
    decode_payload,
    decode_update_security_credentials_command,
    decode_update_security_credentials_response,
    encode_content,
)
from tests.gbcs.helpers import subject_key_identifier, zaz1_certificate
from tests.reference import RTDS_623, RTDS_TCOS, rtds_files, rtds_hex

P623 = "CS02bSupplierByTransCoS_6.23_"
TCOS_DS = TrustAnchorCellIdentifier(RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE)


def _payload(folder: str, name: str) -> object:
    return decode_payload(decode_frame(rtds_hex(folder, name)))


def _command(folder: str, name: str) -> tuple[int, UpdateSecurityCredentialsCommand]:
    frame = decode_frame(rtds_hex(folder, name))
    command = decode_payload(frame)
    assert isinstance(command, UpdateSecurityCredentialsCommand)
    return frame.apdu.originator_counter, command


@pytest.mark.parametrize(("folder", "name"), rtds_files())
def test_every_rtds_content_re_encodes_byte_for_byte(folder: str, name: str) -> None:
    frame = decode_frame(rtds_hex(folder, name))
    value = decode_payload(frame)
    # Commands are DER; meters write 128-255 lengths as 82 00 LL (docs/gbcs-cs02b.md §4).
    style = LengthStyle.DER if frame.apdu.cra_flag is CraFlag.COMMAND else LengthStyle.DEVICE
    assert encode_content(value, style) == frame.apdu.content


def test_the_623_immediate_command_decodes_to_its_values() -> None:
    counter, command = _command(RTDS_623, P623 + "IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    control = command.authorising_remote_party_control
    assert control.credentials_replacement_mode is CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS
    assert control.authorising_remote_party_ta_cell == TCOS_DS
    assert control.authorising_remote_party_seq_number == counter  # §2.5
    assert control.apply_time_based_cpv_checks is True
    assert control.plaintext_symmetric_key is None
    assert control.new_remote_party_floor_seq_number is None
    assert control.new_remote_party_specialist_floor_seq_numbers is None
    assert control.other_remote_party_seq_number_changes is not None
    (change,) = control.other_remote_party_seq_number_changes
    assert change.remote_party_role is RemotePartyRole.SUPPLIER
    assert change.floor_seq_number == 0
    assert change.specialist_floor_seq_numbers == (
        SpecialistSeqNumber(SeqNumberUsage.PREPAYMENT_TOP_UP, 0),
    )
    # §9: supplier DS, KA, KA top-up, in that order.
    assert [r.target_trust_anchor_cell for r in command.replacements] == [
        TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.DIGITAL_SIGNATURE),
        TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT),
        TrustAnchorCellIdentifier(
            RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP
        ),
    ]
    assert len(command.certification_path) == 1
    assert command.execution_date_time is None
    assert not command.is_cancellation and not command.is_future_dated


def test_certificates_are_the_exact_der_bytes_carried() -> None:
    raw = rtds_hex(RTDS_623, P623 + "IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    command = decode_payload(decode_frame(raw))
    assert isinstance(command, UpdateSecurityCredentialsCommand)
    blobs = [r.replacement_certificate for r in command.replacements]
    for blob in [*blobs, *command.certification_path]:
        assert blob in raw
        certificate = x509.load_der_x509_certificate(blob)
        assert certificate.public_bytes(serialization.Encoding.DER) == blob


def test_the_future_dated_command_carries_its_execution_time() -> None:
    _, command = _command(RTDS_623, P623 + "FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX")
    assert command.execution_date_time == datetime(2030, 1, 2, tzinfo=UTC)
    assert command.is_future_dated and not command.is_cancellation


def test_the_cancellation_carries_the_all_nines_time_and_no_floor_changes() -> None:
    _, command = _command(RTDS_623, P623 + "CANCELLATION_SUCCESS_COMMAND_GBCS.HEX")
    assert command.execution_date_time == CANCELLATION_DATE_TIME
    assert command.is_cancellation and not command.is_future_dated
    assert command.authorising_remote_party_control.other_remote_party_seq_number_changes is None
    assert encode_content(command).endswith(b"\x18\x0f99991231235959Z")


def test_the_transcos_by_transcos_command_disapplies_time_based_checks() -> None:
    counter, command = _command(RTDS_TCOS, "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX")
    control = command.authorising_remote_party_control
    assert control.credentials_replacement_mode is CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS
    assert control.apply_time_based_cpv_checks is False
    assert control.authorising_remote_party_seq_number == counter
    (replacement,) = command.replacements
    assert replacement.target_trust_anchor_cell == TCOS_DS
    replacing = x509.load_der_x509_certificate(replacement.replacement_certificate)
    assert replacing == zaz1_certificate("Z1b-transitionalCoS-ds")


def test_the_transcos_response_reports_the_old_and_new_key_identifiers() -> None:
    response = _payload(RTDS_TCOS, "CS02bTransCoSByTransCoS_NA_SUCCESS_RESPONSE_GBCS.HEX")
    assert isinstance(response, UpdateSecurityCredentialsResponse)
    assert response.command_accepted
    outcome = response.execution_outcome
    assert outcome is not None
    assert outcome.remote_party_seq_number_changes == ()  # present but empty: 30 00
    (cell,) = outcome.replacement_outcomes
    assert cell.affected_trust_anchor_cell == TCOS_DS
    assert cell.status_code is StatusCode.SUCCESS
    tcos = Eui64.parse("90B3D51F30000004")
    assert cell.existing_subject_unique_id == tcos == cell.replacing_subject_unique_id
    assert cell.existing_subject_key_id == subject_key_identifier(
        zaz1_certificate("Z1-transitionalCoS-ds")
    )
    assert cell.replacing_subject_key_id == subject_key_identifier(
        zaz1_certificate("Z1b-transitionalCoS-ds")
    )


def test_future_dated_and_cancellation_responses_only_accept() -> None:
    for name in ("FUTURE_DATED_SUCCESS_RESPONSE", "CANCELLATION_SUCCESS_RESPONSE"):
        response = _payload(RTDS_623, f"{P623}{name}_GBCS.HEX")
        assert response == UpdateSecurityCredentialsResponse(None)


def test_the_immediate_response_reports_three_successful_supplier_cells() -> None:
    counter, command = _command(RTDS_623, P623 + "IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    response = _payload(RTDS_623, P623 + "IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert isinstance(response, UpdateSecurityCredentialsResponse)
    outcome = response.execution_outcome
    assert outcome is not None
    assert outcome.authorising_remote_party_seq_number == counter
    assert outcome.credentials_replacement_mode is CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS
    assert [o.affected_trust_anchor_cell for o in outcome.replacement_outcomes] == [
        r.target_trust_anchor_cell for r in command.replacements
    ]
    assert {o.status_code for o in outcome.replacement_outcomes} == {StatusCode.SUCCESS}
    control = command.authorising_remote_party_control
    assert outcome.remote_party_seq_number_changes == control.other_remote_party_seq_number_changes


def test_the_alert_reports_the_future_dated_command_executed() -> None:
    _, command = _command(RTDS_623, P623 + "FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX")
    alert = _payload(RTDS_623, P623 + "8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX")
    assert isinstance(alert, UpdateSecurityCredentialsAlert)
    assert alert.alert_code is AlertCode.FUTURE_DATED_COMMAND_ACTIONED
    assert alert.execution_date_time == command.execution_date_time
    control = command.authorising_remote_party_control
    seq = control.authorising_remote_party_seq_number
    assert alert.execution_outcome.authorising_remote_party_seq_number == seq


def test_meter_lengths_decode_and_der_re_encoding_is_shorter_but_equal_in_value() -> None:
    frame = decode_frame(rtds_hex(RTDS_623, P623 + "IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"))
    assert b"\x30\x82\x00" in frame.apdu.content  # the quirk is really in the vector
    response = decode_payload(frame)
    der = encode_content(response)
    assert b"\x30\x82\x00" not in der and len(der) < len(frame.apdu.content)
    assert decode_update_security_credentials_response(der) == response


@pytest.mark.parametrize(("folder", "name"), rtds_files())
def test_rtds_commands_carry_the_mode_their_message_code_names(folder: str, name: str) -> None:
    frame = decode_frame(rtds_hex(folder, name))
    value = decode_payload(frame)
    if isinstance(value, UpdateSecurityCredentialsCommand):
        check_message_code(frame.apdu.message_code, value)


def test_a_mode_that_disagrees_with_the_message_code_decodes_but_fails_the_check() -> None:
    frame = decode_frame(rtds_hex(RTDS_TCOS, "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX"))
    command = decode_payload(frame)
    assert isinstance(command, UpdateSecurityCredentialsCommand)
    with pytest.raises(MessageCodeMismatch) as caught:
        check_message_code(0x0107, command)
    assert (caught.value.message_code, caught.value.mode) == (0x0107, 6)


def test_content_errors_carry_frame_offsets() -> None:
    raw = bytearray(rtds_hex(RTDS_623, P623 + "IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"))
    raw[59] = 0x0F  # credentialsReplacementMode 15 (offset 57: 02 01 07)
    with pytest.raises(DecodeError) as caught:
        decode_payload(decode_frame(bytes(raw)))
    assert caught.value.reason is DecodeReason.INVALID_VALUE
    assert caught.value.offset == 57


def test_content_decoders_refuse_trailing_bytes() -> None:
    _, command = _command(RTDS_623, P623 + "IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    encoded = encode_content(command)
    with pytest.raises(DecodeError) as caught:
        decode_update_security_credentials_command(encoded + b"\x00")
    assert caught.value.reason is DecodeReason.TRAILING_BYTES
    assert caught.value.offset == len(encoded)


def test_defaults_and_absent_options_are_omitted_from_the_encoding() -> None:
    control = AuthorisingRemotePartyControl(CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER, 5)
    command = UpdateSecurityCredentialsCommand(control, (), ())
    # SEQUENCE { SEQUENCE { mode 2, [3] 5 }, SEQUENCE {}, SEQUENCE {} }
    assert encode_content(command).hex() == "300c" + "3006" + "020102" + "830105" + "3000" + "3000"


@pytest.mark.parametrize("mode", list(CredentialsReplacementMode))
def test_every_mode_decodes_through_the_frame_as_command_and_response(
    mode: CredentialsReplacementMode,
) -> None:
    control = AuthorisingRemotePartyControl(mode, 9, TCOS_DS)
    command = UpdateSecurityCredentialsCommand(control, (), ())
    device, party = Eui64.parse("00DB1234567890A0"), Eui64.parse("90B3D51F30000004")
    sent = build_apdu(
        cra_flag=CraFlag.COMMAND,
        originator=party,
        recipient=device,
        originator_counter=9,
        message_code=mode.message_code,
        content=command,
        signer=None,
    )
    frame = decode_frame(sent.encode())
    assert decode_payload(frame) == command
    check_message_code(frame.apdu.message_code, command)
    response = UpdateSecurityCredentialsResponse(ExecutionOutcome(9, mode, (), ()))
    answer = build_apdu(
        cra_flag=CraFlag.RESPONSE,
        originator=device,
        recipient=party,
        originator_counter=9,
        message_code=mode.message_code,
        content=response,
        signer=None,
        length_style=LengthStyle.DEVICE,
    )
    assert decode_payload(decode_frame(answer.encode())) == response
