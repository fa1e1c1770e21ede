"""A small DER reader and writer for the X.509 subset SMKI certificates use.

Theory of operation: `cryptography` refuses some SMKI certificates (the ZAZ1
``mdr-*`` ones carry ecdsa-with-SHA256 with explicit NULL parameters, see
docs/duis-xmldsig-smki.md §3.2), so certificates are walked here instead. The
reader never copies: every element is a ``Tlv`` naming a slice of the caller's
buffer, so the TBS bytes used for signature checks are exactly those received.
Every failure is a :class:`DerError` carrying the byte offset; the certificate
layer turns it into a ``CertificateError``. The writer is the minimal encoder
the test PKI needs (definite, minimal lengths; low tag numbers only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

# Universal tags used by X.509 (X.690 §8).
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
TELETEX_STRING = 0x14
IA5_STRING = 0x16
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
UNIVERSAL_STRING = 0x1C
BMP_STRING = 0x1E
SEQUENCE = 0x30
SET = 0x31


class DerError(ValueError):
    """Bytes that are not the DER this module expects, at ``offset``."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Tlv:
    """One element: its tag octet and where its header and content lie in ``buffer``."""

    buffer: bytes
    tag: int
    offset: int
    content_start: int
    end: int

    @property
    def content(self) -> bytes:
        return self.buffer[self.content_start : self.end]

    @property
    def encoded(self) -> bytes:
        """The whole element, header included, byte for byte as received."""
        return self.buffer[self.offset : self.end]

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> Iterator[Tlv]:
        """The elements inside a constructed element, in order."""
        if not self.constructed:
            raise DerError(f"tag {self.tag:#04x} is not constructed", self.offset)
        position = self.content_start
        while position < self.end:
            child = read_tlv(self.buffer, position, self.end)
            yield child
            position = child.end

    def expect(self, tag: int) -> Tlv:
        if self.tag != tag:
            raise DerError(f"expected tag {tag:#04x}, found {self.tag:#04x}", self.offset)
        return self


def read_tlv(buffer: bytes, offset: int, limit: int) -> Tlv:
    """Reads the element starting at ``offset``; it must end by ``limit``."""
    if offset >= limit:
        raise DerError("element expected, found end of data", offset)
    tag = buffer[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used in X.509", offset)
    if offset + 1 >= limit:
        raise DerError("length octet missing", offset)
    first = buffer[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length is not DER", offset)
    else:
        count = first & 0x7F
        if count > 4 or position + count > limit:
            raise DerError("length of length out of range", offset)
        length = int.from_bytes(buffer[position : position + count], "big")
        position += count
    end = position + length
    if end > limit:
        raise DerError(f"length {length} runs past the end of its container", offset)
    return Tlv(buffer, tag, offset, position, end)


def read_single(buffer: bytes) -> Tlv:
    """Reads one element that must fill ``buffer`` exactly."""
    element = read_tlv(buffer, 0, len(buffer))
    if element.end != len(buffer):
        raise DerError(f"{len(buffer) - element.end} bytes after the element", element.end)
    return element


def sequence_items(element: Tlv, tag: int = SEQUENCE) -> list[Tlv]:
    return list(element.expect(tag).children())


def decode_oid(element: Tlv) -> str:
    """Dotted form of an OBJECT IDENTIFIER (X.690 §8.19)."""
    content = element.expect(OBJECT_IDENTIFIER).content
    dotted = _dotted(content)
    if dotted is None:
        raise DerError("malformed object identifier", element.offset)
    return dotted


@lru_cache(maxsize=256)
def _dotted(content: bytes) -> str | None:
    if not content or content[-1] & 0x80:
        return None
    arcs: list[int] = []
    value = 0
    started = False
    for byte in content:
        if not started and byte == 0x80:
            return None  # a non-minimal arc
        value = (value << 7) | (byte & 0x7F)
        if value >> 160:
            return None  # larger than any real arc (UUID arcs are 128 bits)
        started = bool(byte & 0x80)
        if not started:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def decode_integer(element: Tlv) -> int:
    content = element.expect(INTEGER).content
    if not content:
        raise DerError("empty INTEGER", element.offset)
    return int.from_bytes(content, "big", signed=True)


def decode_boolean(element: Tlv) -> bool:
    content = element.expect(BOOLEAN).content
    if len(content) != 1:
        raise DerError("BOOLEAN is one octet", element.offset)
    return content[0] != 0


def decode_bit_string(element: Tlv) -> tuple[int, bytes]:
    """(unused bits, octets) of a BIT STRING."""
    content = element.expect(BIT_STRING).content
    if not content or content[0] > 7 or (len(content) == 1 and content[0] != 0):
        raise DerError("malformed BIT STRING", element.offset)
    return content[0], content[1:]


# --- writer -------------------------------------------------------------------------------


def encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


def sequence(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))


def integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for the sign bit
    return encode(INTEGER, value.to_bytes(size, "big", signed=True))


@lru_cache(maxsize=256)
def oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    numbers = [arcs[0] * 40 + arcs[1], *arcs[2:]]
    out = bytearray()
    for number in numbers:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        out.extend(reversed(chunk))
    return encode(OBJECT_IDENTIFIER, bytes(out))


def bit_string(octets: bytes, unused_bits: int = 0) -> bytes:
    return encode(BIT_STRING, bytes((unused_bits,)) + octets)


def named_bits(bits: set[int]) -> bytes:
    """A named-bit-list BIT STRING with trailing zero bits removed (X.690 §11.2.2)."""
    if not bits:
        return bit_string(b"")
    top = max(bits)
    octets = bytearray((top // 8) + 1)
    for bit in bits:
        octets[bit // 8] |= 0x80 >> (bit % 8)
    unused = 7 - (top % 8)
    return bit_string(bytes(octets), unused)


def octet_string(value: bytes) -> bytes:
    return encode(OCTET_STRING, value)


def boolean(value: bool) -> bytes:
    return encode(BOOLEAN, b"\xff" if value else b"\x00")
