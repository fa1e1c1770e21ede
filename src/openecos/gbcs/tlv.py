"""Lengths, tags and integers: the byte layer under the frames and CS02a/CS02b.

Theory of operation. Decoders here work on a ``bytes`` buffer with explicit
``(pos, end)`` bounds and return offsets, never slices, so a whole frame is
decoded without copying and every error names the absolute offset of the bad
byte. Each reader checks the element it reads against ``end`` (the end of the
enclosing element), so an over-long length is caught where it is written.

Two length dialects meet in one GBCS frame (docs/gbcs-cs02b.md §2.3, §4):

* the A-XDR header lengths, always minimal on the wire (``7A``, ``81 CE``,
  ``82 07 53``);
* the BER/DER lengths of the ASN.1 content. Commands are DER-minimal; meters
  write every length of 128-255 as ``82 00 LL``. The decoder accepts both (and
  any ``81``/``82``/``83`` form); the encoder writes :attr:`LengthStyle.DER`
  by default and :attr:`LengthStyle.DEVICE` to reproduce meter output byte
  for byte.

Lengths above ``83 xx xx xx`` (16 MiB) are refused: no GBCS message comes near.
"""

from __future__ import annotations

from enum import Enum

from openecos.gbcs.errors import DecodeError, DecodeReason, EncodeError

U64_MAX = (1 << 64) - 1


class LengthStyle(Enum):
    """How the ASN.1 encoder writes lengths of 128-255 bytes."""

    DER = "der"
    """Minimal: ``81 LL``. What the DCC and users send (commands)."""
    DEVICE = "device"
    """``82 00 LL``, as RTDS meters write responses and alerts (docs/gbcs-cs02b.md §4)."""

    # Members are singletons compared by identity, so the identity hash agrees with ==;
    # Enum's own __hash__ is Python code, and styles key the encoder's caches.
    __hash__ = object.__hash__


# -- decoding ---------------------------------------------------------------------------------


def read_length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Reads a length at ``pos``; returns ``(length, offset after the length)``.

    Does not check the length against ``end``; :func:`read_tlv` does.
    """
    if pos >= end:
        raise DecodeError(DecodeReason.TRUNCATED, pos, "length expected")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 3:
        raise DecodeError(DecodeReason.UNSUPPORTED_LENGTH_FORM, pos, f"length byte {first:02X}")
    if pos + 1 + count > end:
        raise DecodeError(DecodeReason.TRUNCATED, pos, "length runs past the end")
    if count == 1:
        return buf[pos + 1], pos + 2
    if count == 2:
        return (buf[pos + 1] << 8) | buf[pos + 2], pos + 3
    return (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3], pos + 4


def read_tlv(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """Reads the tag ``tag`` and its length at ``pos``; returns the value's ``(start, end)``."""
    # The short form is the hot path: keep it to a few indexings (decoding is benchmarked).
    if pos + 1 < end and buf[pos] == tag:
        length = buf[pos + 1]
        if length < 0x80:
            stop = pos + 2 + length
            if stop <= end:
                return pos + 2, stop
        elif length == 0x82 and pos + 3 < end:  # certificates, and the meters' 82 00 LL
            stop = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
            if stop <= end:
                return pos + 4, stop
    return _read_tlv_slow(buf, pos, end, tag)


def _read_tlv_slow(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    if pos >= end:
        raise DecodeError(DecodeReason.TRUNCATED, pos, f"tag {tag:02X} expected")
    if buf[pos] != tag:
        raise DecodeError(
            DecodeReason.UNEXPECTED_TAG, pos, f"tag {tag:02X} expected, found {buf[pos]:02X}"
        )
    length, start = read_length(buf, pos + 1, end)
    stop = start + length
    if stop > end:
        raise DecodeError(DecodeReason.LENGTH_OVERRUN, pos + 1, f"length {length}")
    return start, stop


def read_unsigned(
    buf: bytes, pos: int, end: int, tag: int, maximum: int = U64_MAX
) -> tuple[int, int]:
    """Reads an INTEGER-like element (``tag``) holding a value in ``0..maximum``.

    DER two's complement; a leading ``00`` keeps a positive value positive
    (``02 03 00 8F 66``). Returns ``(value, offset after the element)``.
    """
    # Fast paths for the one- and two-byte values that most fields hold.
    if pos + 2 < end and buf[pos] == tag:
        size = buf[pos + 1]
        if size == 1:
            value = buf[pos + 2]
            if value < 0x80 and value <= maximum:
                return value, pos + 3
        elif size == 2 and pos + 3 < end:
            value = (buf[pos + 2] << 8) | buf[pos + 3]
            if value < 0x8000 and value <= maximum:
                return value, pos + 4
    start, stop = read_tlv(buf, pos, end, tag)
    size = stop - start
    if size == 0:
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, "empty integer")
    if size > 9 or buf[start] & 0x80:
        raise DecodeError(DecodeReason.INTEGER_OUT_OF_RANGE, pos, "negative or over 64 bits")
    value = int.from_bytes(buf[start:stop], "big")
    if value > maximum:
        raise DecodeError(DecodeReason.INTEGER_OUT_OF_RANGE, pos, f"{value} > {maximum}")
    return value, stop


def read_octets(buf: bytes, pos: int, end: int, tag: int, size: int) -> tuple[bytes, int]:
    """Reads an OCTET STRING-like element of exactly ``size`` bytes."""
    start, stop = read_tlv(buf, pos, end, tag)
    if stop - start != size:
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, f"{size} bytes expected")
    return buf[start:stop], stop


def read_element(buf: bytes, pos: int, end: int, tag: int) -> tuple[bytes, int]:
    """The whole element at ``pos`` (tag, length and value) as bytes, e.g. a certificate."""
    _, stop = read_tlv(buf, pos, end, tag)
    return buf[pos:stop], stop


def expect_end(pos: int, end: int) -> None:
    if pos != end:
        raise DecodeError(DecodeReason.TRAILING_BYTES, pos, f"{end - pos} unexpected bytes")


# -- encoding ---------------------------------------------------------------------------------


def encode_length(length: int, style: LengthStyle = LengthStyle.DER) -> bytes:
    """An ASN.1 length in ``style``; also the minimal A-XDR length (``DER``)."""
    if length < 0x80:
        return bytes((length,))
    if length < 0x100:
        if style is LengthStyle.DEVICE:
            return bytes((0x82, 0, length))
        return bytes((0x81, length))
    if length < 0x10000:
        return bytes((0x82, length >> 8, length & 0xFF))
    if length < 0x1000000:
        return bytes((0x83, length >> 16, (length >> 8) & 0xFF, length & 0xFF))
    raise EncodeError(f"length {length} is over the 16 MiB a GBCS element may have")


def tlv(tag: int, value: bytes, style: LengthStyle = LengthStyle.DER) -> bytes:
    return bytes((tag,)) + encode_length(len(value), style) + value


def unsigned_value(value: int, maximum: int = U64_MAX) -> bytes:
    """The minimal DER two's-complement content octets of a value in ``0..maximum``."""
    if not 0 <= value <= maximum:
        raise EncodeError(f"{value} is outside 0..{maximum}")
    # One extra bit for the sign: 0x80 needs 00 80.
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def unsigned(tag: int, value: int, maximum: int = U64_MAX) -> bytes:
    if 0 <= value < 0x80 and value <= maximum:  # one content octet: most codes and floors
        return bytes((tag, 1, value))
    if 0x80 <= value < 0x8000 and value <= maximum:  # two: seq numbers of a young party
        return bytes((tag, 2, value >> 8, value & 0xFF))
    body = unsigned_value(value, maximum)
    return bytes((tag, len(body))) + body


def element_length(element: bytes) -> int:
    """The length of the TLV at the start of ``element``, for checking opaque DER blobs."""
    if len(element) < 2:
        raise EncodeError("not a DER element")
    try:
        length, start = read_length(element, 1, len(element))
    except DecodeError as exc:
        raise EncodeError(f"not a DER element: {exc}") from None
    return start + length
