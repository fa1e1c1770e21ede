"""General-Signing and General-Ciphering APDUs: the outer frames of GBCS messages.

Theory of operation. Every CS02 command is a General-Signing APDU (tag
``DF``) wrapped in a General-Ciphering APDU (tag ``DD``) that carries only a
12-byte GMAC; responses and alerts are bare ``DF`` APDUs, except that CS02a
responses are MACed too (docs/gbcs-cs02b.md §2.1; RTDS 6.24.1)::

    DD 00 00 00 00 00 00  len  11 <counter 4>  DF ... <content> [40 <r‖s>|00]  <GMAC 12>
    DF 09 <cra> <counter 8> 08 <orig> 08 <recip> <date-time> <other-info> <len> <content> [sig]

:func:`decode_frame` reads either form into a :class:`GbcsFrame`, which keeps
the input bytes and the exact offsets of the signed range (``DF``+1 to the end
of the content, §3.1) and of the MAC'd APDU (§3.2), so verification hashes the
bytes that arrived and never a re-serialisation. The content stays opaque
here; :mod:`openecos.gbcs.payload` decodes it.

Header lengths are A-XDR and always minimal when encoded (§2.3); the decoder
accepts ``81``/``82``/``83`` forms whether minimal or not.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NoReturn

from openecos.eui import Eui64
from openecos.gbcs._fast import constructor, twin_of
from openecos.gbcs.codes import CraFlag, MessageCode
from openecos.gbcs.errors import DecodeError, DecodeReason, EncodeError
from openecos.gbcs.tlv import encode_length, expect_end, read_length

GENERAL_SIGNING_TAG = 0xDF
GENERAL_CIPHERING_TAG = 0xDD
GENERAL_CIPHERING_PREFIX = bytes.fromhex("DD000000000000")
"""``DD`` and six ``00``: empty transaction-id, system titles, date-time and other-information,
and key-info absent (§2.1)."""
SECURITY_HEADER = bytes.fromhex("1100000000")
"""Security control 0x11 (authentication only) and invocation counter 0 (§2.1)."""
MAC_AAD_PREFIX = bytes.fromhex("110000000000")
"""What precedes the General-Signing APDU in the GMAC's AAD; five bytes give a wrong tag (§3.2)."""
MAC_SIZE = 12
SIGNATURE_SIZE = 64
DLMS_DATE_TIME_SIZE = 12
RTDS_RESPONSE_DATE_TIME = bytes.fromhex("07DF0101FF000000008000FF")
"""The DLMS date-time every RTDS CS02b response carries: 2015-01-01 00:00, deviation and
clock status unspecified (§2.4)."""

_TRANSACTION_ID_LENGTH = 9
_SYSTEM_TITLE_LENGTH = 8
CRA_FLAGS = {flag.value: flag for flag in CraFlag}
_CRA_FLAGS = CRA_FLAGS
_MESSAGE_CODES = {code.value: code for code in MessageCode}


@dataclass(frozen=True, slots=True)
class GeneralSigningApdu:
    """A General-Signing APDU (the GBCS grouping header, content and signature).

    ``message_code`` is a :class:`MessageCode` where the code is one of those,
    otherwise the plain int (CS02d is 0x000B, for instance). ``supplementary_information``
    holds the other-information bytes after the message code: empty for CS02a/CS02b;
    the supplementary remote-party ID, counters or certificate of other use cases (§2.2),
    kept raw. ``date_time`` is the 12-byte DLMS date-time or ``None`` (``00``).
    ``signature`` is ``None`` when the signature block is absent (a pre-command),
    ``b""`` when it is present with length ``00`` (unsigned, MAC only), or the
    64-byte ``r‖s``.
    """

    cra_flag: CraFlag
    originator_counter: int
    originator: Eui64
    recipient: Eui64
    message_code: int
    content: bytes
    date_time: bytes | None = None
    supplementary_information: bytes = b""
    signature: bytes | None = None

    def signed_bytes(self) -> bytes:
        """The bytes a signature covers: after ``DF`` through the end of the content (§3.1)."""
        return signed_bytes(
            self.cra_flag,
            self.originator_counter,
            self.originator,
            self.recipient,
            self.message_code,
            self.content,
            self.date_time,
            self.supplementary_information,
        )

    def signature_block(self) -> bytes:
        if self.signature is None:
            return b""
        if len(self.signature) not in (0, SIGNATURE_SIZE):
            raise EncodeError("a signature is 64 bytes r‖s, or empty")
        return bytes((len(self.signature),)) + self.signature

    def encode(self) -> bytes:
        """The whole APDU, from ``DF`` through the signature block."""
        remembered = _last_encoded
        if remembered[0] is self:  # just built by openecos.gbcs.builder (see _last_encoded)
            return remembered[1]
        return b"\xdf" + self.signed_bytes() + self.signature_block()

    def with_signature(self, signature: bytes | None) -> GeneralSigningApdu:
        # Not dataclasses.replace: it re-runs __init__ through field introspection and
        # costs more than the rest of building a command (bench/gbcs_codec.py).
        return _new_apdu(
            self.cra_flag,
            self.originator_counter,
            self.originator,
            self.recipient,
            self.message_code,
            self.content,
            self.date_time,
            self.supplementary_information,
            signature,
        )


@dataclass(frozen=True, slots=True)
class GeneralCiphering:
    """The General-Ciphering wrapper of a MACed APDU: its 12-byte GMAC tag.

    The security header is always ``11 00000000``: authentication only, invocation
    counter 0 (every RTDS frame; §2.1). The decoder refuses any other header, because
    the MAC's AAD prefix is the fixed ``11 00 00 00 00 00`` (§3.2) and a counter that the
    tag does not cover must not be accepted as if it meant something.
    """

    mac: bytes


@dataclass(frozen=True, slots=True)
class GbcsFrame:
    """A decoded frame and the bytes it was decoded from.

    Offsets are into ``raw``. ``apdu_start`` is the offset of ``DF``, ``apdu_end``
    the end of the signature block; ``content_start``/``content_end`` bound the
    content (``content_end`` is also the end of the signed range).
    """

    apdu: GeneralSigningApdu
    ciphering: GeneralCiphering | None
    raw: bytes
    apdu_start: int
    apdu_end: int
    other_information_start: int
    content_start: int
    content_end: int

    @property
    def signed_range(self) -> tuple[int, int]:
        """``(start, end)`` of the bytes the signature covers (§3.1)."""
        return self.apdu_start + 1, self.content_end

    @property
    def signed_bytes(self) -> memoryview:
        return memoryview(self.raw)[self.apdu_start + 1 : self.content_end]

    @property
    def apdu_bytes(self) -> memoryview:
        """The General-Signing APDU as received, ``DF`` through the signature block."""
        return memoryview(self.raw)[self.apdu_start : self.apdu_end]

    @property
    def mac_aad(self) -> bytes:
        """The GMAC's AAD: :data:`MAC_AAD_PREFIX` then the APDU as received (§3.2)."""
        return MAC_AAD_PREFIX + self.raw[self.apdu_start : self.apdu_end]


_new_eui = constructor(Eui64)
_new_apdu = constructor(GeneralSigningApdu)
new_apdu = _new_apdu
"""Builds a :class:`GeneralSigningApdu` from already-checked field values, in field order."""
apdu_twin = twin_of(_new_apdu)
"""Its mutable twin (see :func:`openecos.gbcs._fast.twin_of`)."""
_HEADER = struct.Struct(">BBQB8sB8s")
"""``09 <cra> <counter 8> 08 <originator> 08 <recipient>``: the fixed part after ``DF``."""
_CS02_OTHER_INFORMATION = struct.Struct(">BH")
_SIMPLE_HEADER = struct.Struct(">BBQB8sB8sBBH")
"""The fixed part, date-time ``00`` and other-information ``02 <code>``."""
"""Other-information that is the message code alone (CS02a/CS02b): ``02 <code>``."""


def signed_bytes(
    cra_flag: int,
    originator_counter: int,
    originator: Eui64,
    recipient: Eui64,
    message_code: int,
    content: bytes,
    date_time: bytes | None = None,
    supplementary_information: bytes = b"",
) -> bytes:
    """The signed range of a General-Signing APDU from its values (§3.1), checked.

    One ``struct`` call and one join: building a command is benchmarked against one
    ECDSA sign (bench/gbcs_codec.py).
    """
    size = len(content)
    if size < 0x80:
        content_length = bytes((size,))
    elif size < 0x10000:
        content_length = bytes((0x81, size) if size < 0x100 else (0x82, size >> 8, size & 0xFF))
    else:
        content_length = encode_length(size)
    if date_time is None and not supplementary_information and cra_flag in _CRA_FLAGS:
        # The usual case in one struct call: the fixed part, date-time 00 and
        # other-information 02 <code>. struct refuses a counter outside u64 or a code
        # outside 16 bits; the checks below then name the fault.
        try:
            header = _SIMPLE_HEADER.pack(
                _TRANSACTION_ID_LENGTH,
                cra_flag,
                originator_counter,
                _SYSTEM_TITLE_LENGTH,
                originator.value,
                _SYSTEM_TITLE_LENGTH,
                recipient.value,
                0,
                2,
                message_code,
            )
        except struct.error:
            pass
        else:
            return b"".join((header, content_length, content))
    if cra_flag not in _CRA_FLAGS:
        raise EncodeError(f"CRA flag {cra_flag!r} is not 1, 2 or 3")
    if not 0 <= message_code <= 0xFFFF:
        raise EncodeError(f"message code {message_code} is not 16 bits")
    try:
        header = _HEADER.pack(
            _TRANSACTION_ID_LENGTH,
            cra_flag,
            originator_counter,
            _SYSTEM_TITLE_LENGTH,
            originator.value,
            _SYSTEM_TITLE_LENGTH,
            recipient.value,
        )
    except struct.error:
        raise EncodeError(f"originator counter {originator_counter!r} is not a u64") from None
    if date_time is None:
        date_time_block = b"\x00"
    elif len(date_time) == DLMS_DATE_TIME_SIZE:
        date_time_block = b"\x0c" + date_time
    else:
        raise EncodeError("a DLMS date-time is 12 bytes")
    if supplementary_information:
        other = message_code.to_bytes(2, "big") + supplementary_information
        other_block = encode_length(len(other)) + other
    else:
        other_block = _CS02_OTHER_INFORMATION.pack(2, message_code)
    return b"".join((header, date_time_block, other_block, content_length, content))


# The encoding of the APDU built last, with the APDU itself (held, so the identity test
# cannot be fooled by a recycled id). openecos.gbcs.builder has just joined those bytes to
# sign them and stores the pair here (one atomic assignment, so threads see a matching
# pair); encode() of that same immutable value returns them instead of joining again.
_last_encoded: tuple[GeneralSigningApdu | None, bytes] = (None, b"")


_new_ciphering = constructor(GeneralCiphering)
_new_frame = constructor(GbcsFrame)
# The mutable twins, for the hot path of decode_frame that inlines the constructors.
_EuiTwin: Any = twin_of(_new_eui)
_ApduTwin: Any = twin_of(_new_apdu)
_CipheringTwin: Any = twin_of(_new_ciphering)
_FrameTwin: Any = twin_of(_new_frame)
_CS02_HEADER = struct.Struct(">BBQB8sB8sBBHBH")
"""After ``DF``: fixed part, date-time ``00``, ``02 <code>``, content length ``82 HH LL``."""
_CS02_HEADER_SIZE = _CS02_HEADER.size


def encode_general_ciphering(apdu: bytes, mac: bytes) -> bytes:
    """Wraps an encoded General-Signing APDU and its GMAC tag (§2.1)."""
    if len(mac) != MAC_SIZE:
        raise EncodeError("a GBCS GMAC tag is 12 bytes")
    header = SECURITY_HEADER
    length = len(header) + len(apdu) + MAC_SIZE
    return b"".join((GENERAL_CIPHERING_PREFIX, encode_length(length), header, apdu, mac))


def decode_frame(data: bytes) -> GbcsFrame:
    """Decodes a ``DD``-wrapped or bare ``DF`` frame; the content is left undecoded.

    Raises :class:`DecodeError` with the offset of the first bad byte.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data)
    # The usual command: DD, six 00, an 82 HH LL length that runs to the end, 11 00000000
    # and DF; two C-level prefix tests. Anything else takes the checks below.
    if (
        data.startswith(_DD_82)
        and data.startswith(_SECURITY_HEADER_DF, 10)
        and 10 + ((data[8] << 8) | data[9]) == end
        and end >= 10 + 5 + 1 + MAC_SIZE
    ):
        mac_start = end - MAC_SIZE
        ciphering = _CipheringTwin(data[mac_start:])
        ciphering.__class__ = GeneralCiphering
        # And the usual General-Signing APDU: its header up to the content in one struct
        # call (fixed part, date-time 00, other-information 02 <code>, length 82 HH LL),
        # the content, then 40 and r‖s up to the MAC. Any other form, or any fault,
        # takes _decode_general_signing, which reports it.
        if mac_start - 16 >= _CS02_HEADER_SIZE + SIGNATURE_SIZE + 1:
            (
                id_length,
                cra,
                counter,
                length_1,
                title_1,
                length_2,
                title_2,
                date_time_length,
                other_length,
                code,
                content_tag,
                content_length,
            ) = _CS02_HEADER.unpack_from(data, 16)
            content_end = 16 + _CS02_HEADER_SIZE + content_length
            if (
                content_end + 1 + SIGNATURE_SIZE == mac_start
                and data[content_end] == SIGNATURE_SIZE
                and id_length == _TRANSACTION_ID_LENGTH
                and length_1 == length_2 == _SYSTEM_TITLE_LENGTH
                and date_time_length == other_length - 2 == 0
                and content_tag == 0x82
                and content_length >= 0x100
                and cra in _CRA_FLAGS
            ):
                originator = _EuiTwin(title_1)
                originator.__class__ = Eui64
                recipient = _EuiTwin(title_2)
                recipient.__class__ = Eui64
                content_start = 16 + _CS02_HEADER_SIZE
                apdu = _ApduTwin(
                    _CRA_FLAGS[cra],
                    counter,
                    originator,
                    recipient,
                    _MESSAGE_CODES.get(code, code),
                    data[content_start:content_end],
                    None,
                    b"",
                    data[content_end + 1 : mac_start],
                )
                apdu.__class__ = GeneralSigningApdu
                frame = _FrameTwin(
                    apdu, ciphering, data, 15, mac_start, 45, content_start, content_end
                )
                frame.__class__ = GbcsFrame
                return frame  # type: ignore[no-any-return]
        return _decode_general_signing(data, 15, mac_start, ciphering)
    if end == 0:
        raise DecodeError(DecodeReason.TRUNCATED, 0, "empty frame")
    if data[0] == GENERAL_SIGNING_TAG:
        return _decode_general_signing(data, 0, end, None)
    if data[0] != GENERAL_CIPHERING_TAG:
        raise DecodeError(DecodeReason.UNEXPECTED_TAG, 0, f"DD or DF expected, found {data[0]:02X}")
    prefix = len(GENERAL_CIPHERING_PREFIX)
    if end < prefix:
        raise DecodeError(DecodeReason.TRUNCATED, end, "General-Ciphering header")
    if data[:prefix] != GENERAL_CIPHERING_PREFIX:
        at = next(i for i in range(prefix) if data[i] != GENERAL_CIPHERING_PREFIX[i])
        raise DecodeError(DecodeReason.UNSUPPORTED, at, "General-Ciphering fields must be empty")
    length, pos = read_length(data, prefix, end)
    if pos + length > end:
        raise DecodeError(DecodeReason.LENGTH_OVERRUN, prefix, f"length {length}")
    expect_end(pos + length, end)
    if length < 5 + 1 + MAC_SIZE:
        raise DecodeError(DecodeReason.TRUNCATED, pos, "General-Ciphering content too short")
    if data[pos : pos + 5] != SECURITY_HEADER:
        at = next(i for i in range(5) if data[pos + i] != SECURITY_HEADER[i])
        raise DecodeError(DecodeReason.UNSUPPORTED, pos + at, "security header must be 11 00000000")
    mac_start = end - MAC_SIZE
    ciphering = _new_ciphering(data[mac_start:])
    if data[pos + 5] != GENERAL_SIGNING_TAG:
        raise DecodeError(DecodeReason.UNEXPECTED_TAG, pos + 5, "DF expected")
    return _decode_general_signing(data, pos + 5, mac_start, ciphering)


_FIXED_HEADER = _HEADER
_DD_82 = GENERAL_CIPHERING_PREFIX + b"\x82"
_SECURITY_HEADER_DF = SECURITY_HEADER + bytes((GENERAL_SIGNING_TAG,))


def _fixed_header_fault(data: bytes, pos: int) -> NoReturn:
    if data[pos] != _TRANSACTION_ID_LENGTH:
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, "transaction-id length must be 9")
    if data[pos + 1] not in _CRA_FLAGS:
        raise DecodeError(DecodeReason.INVALID_VALUE, pos + 1, f"CRA flag {data[pos + 1]:02X}")
    at = pos + 10 if data[pos + 10] != _SYSTEM_TITLE_LENGTH else pos + 19
    raise DecodeError(DecodeReason.INVALID_VALUE, at, "system title length must be 8")


def _decode_general_signing(
    data: bytes, start: int, end: int, ciphering: GeneralCiphering | None
) -> GbcsFrame:
    # Fixed part: DF 09 <cra> <counter 8> 08 <originator> 08 <recipient> = 29 bytes.
    pos = start + 1
    if end - pos < 28:
        raise DecodeError(DecodeReason.TRUNCATED, end, "General-Signing header")
    # One C call for the fixed part (decoding is on the benchmarked hot path).
    id_length, cra, counter, length_1, title_1, length_2, title_2 = _FIXED_HEADER.unpack_from(
        data, pos
    )
    cra_flag = _CRA_FLAGS.get(cra)
    if id_length != _TRANSACTION_ID_LENGTH or cra_flag is None or length_1 != 8 or length_2 != 8:
        _fixed_header_fault(data, pos)
    originator = _new_eui(title_1)
    recipient = _new_eui(title_2)
    pos += 28
    if pos >= end:
        raise DecodeError(DecodeReason.TRUNCATED, pos, "date-time expected")
    date_time: bytes | None = None
    if data[pos] == DLMS_DATE_TIME_SIZE:
        if pos + 13 > end:
            raise DecodeError(DecodeReason.TRUNCATED, pos, "date-time")
        date_time = data[pos + 1 : pos + 13]
        pos += 13
    elif data[pos] == 0:
        pos += 1
    else:
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, "date-time length must be 0 or 12")
    other_start = pos
    if pos < end and data[pos] < 0x80:  # a CS02 other-information is 2 bytes
        other_length = data[pos]
        pos += 1
    else:
        other_length, pos = read_length(data, pos, end)
    if other_length < 2:
        raise DecodeError(DecodeReason.INVALID_VALUE, other_start, "no message code")
    if pos + other_length > end:
        raise DecodeError(DecodeReason.LENGTH_OVERRUN, other_start, f"length {other_length}")
    code = (data[pos] << 8) | data[pos + 1]
    message_code = _MESSAGE_CODES.get(code, code)
    supplementary = data[pos + 2 : pos + other_length]
    pos += other_length
    if pos + 2 < end and data[pos] == 0x82:  # contents of 256 bytes to 64 KiB, most
        content_length = (data[pos + 1] << 8) | data[pos + 2]
        content_start = pos + 3
    else:
        content_length, content_start = read_length(data, pos, end)
    content_end = content_start + content_length
    if content_end > end:
        raise DecodeError(DecodeReason.LENGTH_OVERRUN, pos, f"content length {content_length}")
    pos = content_end
    signature: bytes | None = None
    if pos < end:
        size = data[pos]
        if size == 0:
            signature = b""
        elif size == SIGNATURE_SIZE:
            if pos + 1 + SIGNATURE_SIZE > end:
                raise DecodeError(DecodeReason.TRUNCATED, pos, "signature")
            signature = data[pos + 1 : pos + 1 + SIGNATURE_SIZE]
        else:
            raise DecodeError(DecodeReason.INVALID_VALUE, pos, "signature length must be 0 or 64")
        pos += 1 + size
        expect_end(pos, end)
    # Field order of GeneralSigningApdu, then of GbcsFrame.
    apdu = _new_apdu(
        cra_flag,
        counter,
        originator,
        recipient,
        message_code,
        data[content_start:content_end],
        date_time,
        supplementary,
        signature,
    )
    return _new_frame(apdu, ciphering, data, start, end, other_start, content_start, content_end)
