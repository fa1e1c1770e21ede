"""The decoders' fast constructor builds values indistinguishable from __init__'s."""

from __future__ import annotations

import dataclasses

import pytest

from openecos.eui import Eui64
from openecos.gbcs import (
    CANCELLATION_DATE_TIME,
    CraFlag,
    DecodeError,
    GbcsFrame,
    GeneralCiphering,
    KeyUsage,
    LengthStyle,
    RemotePartyRole,
    TrustAnchorCellIdentifier,
    UpdateSecurityCredentialsCommand,
    decode_frame,
    decode_payload,
    decode_update_security_credentials_command,
    encode_content,
)
from openecos.gbcs._fast import constructor
from openecos.gbcs.codes import CellUsage
from openecos.gbcs.frame import _decode_general_signing
from openecos.gbcs.tlv import read_length
from tests.reference import RTDS_623, rtds_files, rtds_hex


def test_a_fast_built_value_is_the_frozen_class_equal_hashable_and_immutable() -> None:
    make = constructor(TrustAnchorCellIdentifier)
    args = (RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP)
    fast = make(*args)
    slow = TrustAnchorCellIdentifier(*args)
    assert type(fast) is TrustAnchorCellIdentifier
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.key_usage = KeyUsage.DIGITAL_SIGNATURE  # type: ignore[misc]


def test_ordering_and_methods_of_the_class_apply() -> None:
    make = constructor(Eui64)
    assert make(b"\x00" * 8) < Eui64(b"\x01" * 8)
    assert make(b"\x90\xb3\xd5\x1f\x30\x00\x00\x04").duis == "90-B3-D5-1F-30-00-00-04"


# The hot paths (decode_frame's one-struct header, the decoder's and encoder's remembered
# sections) must give exactly what the general code gives, on every RTDS vector and on
# frames that leave the usual shape at every header byte.


def _general_frame(raw: bytes) -> GbcsFrame:
    if raw[0] == 0xDF:
        return _decode_general_signing(raw, 0, len(raw), None)
    _, after_length = read_length(raw, 7, len(raw))  # then 11 00000000 and DF
    mac_start = len(raw) - 12
    return _decode_general_signing(
        raw, after_length + 5, mac_start, GeneralCiphering(raw[mac_start:])
    )


@pytest.mark.parametrize(("folder", "name"), rtds_files())
def test_the_frame_fast_path_equals_the_general_decoder(folder: str, name: str) -> None:
    raw = rtds_hex(folder, name)
    assert decode_frame(raw) == _general_frame(raw)


@pytest.mark.parametrize("at", range(16, 52))
def test_a_header_byte_off_the_usual_shape_decodes_or_fails_as_in_general(at: int) -> None:
    raw = bytearray(
        rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    )
    for delta in (1, 0x80):
        mutated = bytes(raw[:at]) + bytes(((raw[at] + delta) & 0xFF,)) + bytes(raw[at + 1 :])
        try:
            expected: object = _general_frame(mutated)
        except DecodeError as exc:
            expected = (exc.reason, exc.offset)
        try:
            got: object = decode_frame(mutated)
        except DecodeError as exc:
            got = (exc.reason, exc.offset)
        assert got == expected


@pytest.mark.parametrize(("folder", "name"), rtds_files())
def test_remembered_content_decodes_and_encodes_as_afresh(folder: str, name: str) -> None:
    raw = rtds_hex(folder, name)
    frame = decode_frame(raw)
    if frame.apdu.message_code == 0x0008:
        return  # CS02a has no remembered sections
    first = decode_payload(frame)
    again = decode_payload(decode_frame(raw))  # from the caches now
    assert again == first
    style = LengthStyle.DER if frame.apdu.cra_flag is CraFlag.COMMAND else LengthStyle.DEVICE
    assert encode_content(first, style) == frame.apdu.content
    assert encode_content(again, style) == frame.apdu.content  # from the template now


def test_a_command_differing_in_any_remembered_value_is_encoded_afresh() -> None:
    raw = rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    command = decode_payload(decode_frame(raw))
    assert isinstance(command, UpdateSecurityCredentialsCommand)
    encode_content(command)  # remembered
    control = command.authorising_remote_party_control
    variants = [
        dataclasses.replace(
            command,
            authorising_remote_party_control=dataclasses.replace(control, **change),
        )
        for change in (
            {"authorising_remote_party_seq_number": 6002},
            {"authorising_remote_party_seq_number": 1},
            {"authorising_remote_party_seq_number": 1 << 40},
            # around the inline two-byte 83 02 HH LL form (0x80 to 0x7FFF) and outside it
            *({"authorising_remote_party_seq_number": n} for n in (0, 0x7F, 0x80, 0x7FFF, 0x8000)),
            {"apply_time_based_cpv_checks": False},
            {"new_remote_party_floor_seq_number": 7},
            {"authorising_remote_party_ta_cell": None},
            {"other_remote_party_seq_number_changes": ()},
            {"plaintext_symmetric_key": bytes(16)},
        )
    ]
    cell = command.replacements[0].target_trust_anchor_cell
    variants.append(
        dataclasses.replace(
            command,
            replacements=(
                dataclasses.replace(command.replacements[1], target_trust_anchor_cell=cell),
                *command.replacements[1:],
            ),
        )
    )
    first, second, *others = command.replacements
    variants.append(  # the first certificate (the template's key) kept, a later cell changed
        dataclasses.replace(
            command,
            replacements=(
                first,
                dataclasses.replace(second, target_trust_anchor_cell=cell),
                *others,
            ),
        )
    )
    variants.append(  # a later certificate changed
        dataclasses.replace(
            command,
            replacements=(
                first,
                dataclasses.replace(
                    second, replacement_certificate=second.replacement_certificate[:-1] + b"\x00"
                ),
                *others,
            ),
        )
    )
    variants.append(dataclasses.replace(command, certification_path=()))
    variants.append(dataclasses.replace(command, execution_date_time=CANCELLATION_DATE_TIME))
    for variant in variants:
        for _ in range(2):  # afresh, then from the template
            assert decode_update_security_credentials_command(encode_content(variant)) == variant
