"""The length and integer layer: tolerant decoding, minimal and device-style encoding."""

from __future__ import annotations

import pytest

from openecos.gbcs import DecodeError, DecodeReason, LengthStyle
from openecos.gbcs.tlv import (
    encode_length,
    read_length,
    read_tlv,
    read_unsigned,
    unsigned,
)


@pytest.mark.parametrize(
    ("encoded", "length"),
    [
        ("7F", 127),
        ("8180", 128),
        ("820080", 128),  # the meters' form for 128-255 (docs/gbcs-cs02b.md §4)
        ("8200FF", 255),
        ("81CE", 0xCE),
        ("820753", 0x753),
        ("83010000", 0x10000),
        ("83000005", 5),  # non-minimal, still accepted
    ],
)
def test_every_length_form_up_to_83_decodes(encoded: str, length: int) -> None:
    data = bytes.fromhex(encoded)
    assert read_length(data, 0, len(data)) == (length, len(data))


@pytest.mark.parametrize("first", [0x80, 0x84, 0x88, 0xFF])
def test_indefinite_and_over_long_length_forms_are_refused_at_their_offset(first: int) -> None:
    data = bytes([0x30, first, 0, 0, 0, 0, 0])
    with pytest.raises(DecodeError) as caught:
        read_tlv(data, 0, len(data), 0x30)
    assert caught.value.reason is DecodeReason.UNSUPPORTED_LENGTH_FORM
    assert caught.value.offset == 1


def test_a_length_past_the_enclosing_element_is_an_overrun_at_the_length_byte() -> None:
    data = bytes.fromhex("3005020101")
    with pytest.raises(DecodeError) as caught:
        read_tlv(data, 0, len(data), 0x30)
    assert caught.value.reason is DecodeReason.LENGTH_OVERRUN
    assert caught.value.offset == 1


def test_a_long_form_length_cut_short_is_truncated() -> None:
    data = bytes.fromhex("308201")
    with pytest.raises(DecodeError) as caught:
        read_tlv(data, 0, len(data), 0x30)
    assert caught.value.reason is DecodeReason.TRUNCATED


@pytest.mark.parametrize(
    ("length", "der", "device"),
    [
        (127, "7F", "7F"),
        (128, "8180", "820080"),
        (255, "81FF", "8200FF"),
        (256, "820100", "820100"),
        (0x753, "820753", "820753"),
        (0x10000, "83010000", "83010000"),
    ],
)
def test_der_lengths_are_minimal_and_device_lengths_write_128_to_255_as_82_00(
    length: int, der: str, device: str
) -> None:
    assert encode_length(length).hex().upper() == der
    assert encode_length(length, LengthStyle.DEVICE).hex().upper() == device


def test_a_positive_integer_with_its_top_bit_set_gets_a_leading_zero() -> None:
    assert unsigned(0x02, 0x8F66).hex() == "0203008f66"
    assert unsigned(0x83, 0x8000).hex() == "830300" + "8000"
    assert read_unsigned(bytes.fromhex("0203008F66"), 0, 5, 0x02) == (0x8F66, 5)


def test_integers_cover_the_full_64_bit_range() -> None:
    top = (1 << 64) - 1
    encoded = unsigned(0x02, top)
    assert read_unsigned(encoded, 0, len(encoded), 0x02) == (top, len(encoded))


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("0201FF", DecodeReason.INTEGER_OUT_OF_RANGE),  # -1
        ("020A00" + "FF" * 9, DecodeReason.INTEGER_OUT_OF_RANGE),  # 72 bits
        ("0209010000000000000000", DecodeReason.INTEGER_OUT_OF_RANGE),  # 2**64
        ("0200", DecodeReason.INVALID_VALUE),
    ],
)
def test_integers_out_of_range_are_refused(encoded: str, reason: DecodeReason) -> None:
    data = bytes.fromhex(encoded)
    with pytest.raises(DecodeError) as caught:
        read_unsigned(data, 0, len(data), 0x02)
    assert caught.value.reason is reason
    assert caught.value.offset == 0


def test_an_integer_above_its_field_maximum_is_out_of_range() -> None:
    data = bytes.fromhex("02020100")
    with pytest.raises(DecodeError) as caught:
        read_unsigned(data, 0, len(data), 0x02, 0xFF)
    assert caught.value.reason is DecodeReason.INTEGER_OUT_OF_RANGE
