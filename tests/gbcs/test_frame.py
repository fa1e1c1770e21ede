"""General-Signing and General-Ciphering frames: fields, exact ranges, re-encoding, errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from openecos.eui import Eui64
from openecos.gbcs import (
    RTDS_RESPONSE_DATE_TIME,
    CraFlag,
    DecodeError,
    DecodeReason,
    GeneralSigningApdu,
    MessageCode,
    decode_frame,
    decode_payload,
    encode_general_ciphering,
)
from tests.gbcs.helpers import DEVICE
from tests.reference import RTDS_623, RTDS_CS02A, RTDS_TCOS, rtds_files, rtds_hex

IMMEDIATE_COMMAND = "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
IMMEDIATE_RESPONSE = "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"
TCOS = Eui64.parse("90B3D51F30000004")


def test_the_623_immediate_command_header_decodes() -> None:
    raw = rtds_hex(RTDS_623, IMMEDIATE_COMMAND)
    frame = decode_frame(raw)
    apdu = frame.apdu
    assert frame.ciphering is not None
    assert frame.ciphering.mac == raw[-12:]
    assert apdu.cra_flag is CraFlag.COMMAND
    assert apdu.originator == TCOS
    assert apdu.recipient == DEVICE
    assert apdu.message_code is MessageCode.CS02B_SUPPLIER_BY_TRANS_COS
    assert apdu.date_time is None
    assert apdu.supplementary_information == b""
    assert apdu.signature is not None and len(apdu.signature) == 64
    # Layout of docs/gbcs-cs02b.md §2.1: DF at 15, signed bytes [16, 1808), content from 51.
    assert frame.apdu_start == 15
    assert frame.signed_range == (16, 1808)
    assert frame.content_start == 51
    assert frame.apdu_end == len(raw) - 12
    assert bytes(frame.signed_bytes) == raw[16:1808]
    assert frame.mac_aad == bytes.fromhex("110000000000") + raw[15:-12]
    assert apdu.content == raw[51:1808]


def test_the_originator_counter_is_the_8_byte_big_endian_transaction_id() -> None:
    raw = rtds_hex(RTDS_623, IMMEDIATE_COMMAND)
    assert decode_frame(raw).apdu.originator_counter == int.from_bytes(raw[18:26], "big")


def test_a_response_is_a_bare_apdu_with_the_dlms_date_time_and_swapped_titles() -> None:
    command = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_COMMAND)).apdu
    frame = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_RESPONSE))
    assert frame.ciphering is None
    assert frame.apdu_start == 0
    assert frame.signed_range[0] == 1
    assert frame.apdu.cra_flag is CraFlag.RESPONSE
    assert frame.apdu.date_time == RTDS_RESPONSE_DATE_TIME
    assert (frame.apdu.originator, frame.apdu.recipient) == (command.recipient, command.originator)
    assert frame.apdu.originator_counter == command.originator_counter


def test_cs02a_frames_are_unsigned_with_a_zero_signature_length_and_maced() -> None:
    frame = decode_frame(rtds_hex(RTDS_CS02A, "CS02aMAC_6.24.1_SUCCESS_COMMAND_GBCS.HEX"))
    assert frame.apdu.message_code is MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS
    assert frame.apdu.signature == b""
    assert frame.ciphering is not None


@pytest.mark.parametrize(("folder", "name"), rtds_files())
def test_every_rtds_frame_re_encodes_byte_for_byte(folder: str, name: str) -> None:
    raw = rtds_hex(folder, name)
    frame = decode_frame(raw)
    encoded = frame.apdu.encode()
    assert encoded == raw[frame.apdu_start : frame.apdu_end]
    if frame.ciphering is not None:
        assert encode_general_ciphering(encoded, frame.ciphering.mac) == raw


def test_a_pre_command_has_no_signature_block_and_round_trips() -> None:
    apdu = decode_frame(
        rtds_hex(RTDS_TCOS, "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX")
    ).apdu
    pre_command = apdu.with_signature(None).encode()
    assert pre_command == b"\xdf" + apdu.signed_bytes()
    assert decode_frame(pre_command).apdu == apdu.with_signature(None)


def test_longer_other_information_is_kept_raw_and_refused_only_as_cs02_content() -> None:
    apdu = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_RESPONSE)).apdu
    supplementary = bytes(range(16))  # CCS01-style: supplementary remote-party ID and counter
    frame = decode_frame(replace(apdu, supplementary_information=supplementary).encode())
    assert frame.apdu.supplementary_information == supplementary
    assert frame.apdu.message_code is apdu.message_code
    with pytest.raises(DecodeError) as caught:
        decode_payload(frame)
    assert caught.value.reason is DecodeReason.UNSUPPORTED
    assert caught.value.offset == frame.other_information_start


def test_an_unknown_message_code_decodes_as_a_frame_but_not_as_cs02_content() -> None:
    apdu = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_RESPONSE)).apdu
    frame = decode_frame(replace(apdu, message_code=0x000B).encode())
    assert frame.apdu.message_code == 0x000B
    with pytest.raises(DecodeError) as caught:
        decode_payload(frame)
    assert caught.value.reason is DecodeReason.UNSUPPORTED


def test_every_truncation_of_a_command_is_a_decode_error() -> None:
    raw = rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_COMMAND_GBCS.HEX")
    for size in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_frame(raw[:size])


def test_a_bare_apdu_cut_anywhere_but_after_its_content_is_a_decode_error() -> None:
    raw = rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_RESPONSE_GBCS.HEX")
    content_end = decode_frame(raw).content_end
    for size in range(len(raw)):
        if size == content_end:  # a well-formed pre-command: no signature block
            assert decode_frame(raw[:size]).apdu.signature is None
            continue
        with pytest.raises(DecodeError):
            decode_payload(decode_frame(raw[:size]))


def test_a_trailing_byte_is_reported_at_its_offset() -> None:
    raw = rtds_hex(RTDS_623, IMMEDIATE_RESPONSE)
    with pytest.raises(DecodeError) as caught:
        decode_frame(raw + b"\x00")
    assert caught.value.offset == len(raw)
    wrapped = rtds_hex(RTDS_623, IMMEDIATE_COMMAND)
    with pytest.raises(DecodeError) as caught:
        decode_frame(wrapped + b"\x00")
    assert caught.value.reason is DecodeReason.TRAILING_BYTES


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0, 0x30, DecodeReason.UNEXPECTED_TAG),  # neither DD nor DF
        (3, 0x01, DecodeReason.UNSUPPORTED),  # General-Ciphering fields are empty in GBCS
        (10, 0x31, DecodeReason.UNSUPPORTED),  # security control other than 0x11
        (12, 0x01, DecodeReason.UNSUPPORTED),  # invocation counter other than 0
        (15, 0xDE, DecodeReason.UNEXPECTED_TAG),  # General-Signing tag
        (16, 0x08, DecodeReason.INVALID_VALUE),  # transaction-id length
        (17, 0x04, DecodeReason.INVALID_VALUE),  # CRA flag
        (26, 0x07, DecodeReason.INVALID_VALUE),  # system title length
        (44, 0x05, DecodeReason.INVALID_VALUE),  # date-time length
        (45, 0x01, DecodeReason.INVALID_VALUE),  # other-information without a message code
        (1808, 0x41, DecodeReason.INVALID_VALUE),  # signature length
    ],
)
def test_header_faults_are_reported_with_their_offset(
    offset: int, value: int, reason: DecodeReason
) -> None:
    raw = bytearray(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    raw[offset] = value
    with pytest.raises(DecodeError) as caught:
        decode_frame(bytes(raw))
    assert caught.value.reason is reason
    assert caught.value.offset == offset


def test_an_empty_frame_is_truncated() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_frame(b"")
    assert caught.value.reason is DecodeReason.TRUNCATED


def test_a_constructed_apdu_encodes_and_decodes_to_itself() -> None:
    apdu = GeneralSigningApdu(
        cra_flag=CraFlag.ALERT,
        originator_counter=(1 << 64) - 1,
        originator=DEVICE,
        recipient=TCOS,
        message_code=MessageCode.CS02B_UPDATE_SECURITY_CREDENTIALS_ALERT,
        content=bytes(300),
        date_time=RTDS_RESPONSE_DATE_TIME,
        signature=bytes(range(64)),
    )
    assert decode_frame(apdu.encode()).apdu == apdu
