"""Strict readers and writers for the XSD simple types the 6.23 body uses.

The XSD is necessary but not sufficient (docs/duis-xmldsig-smki.md §1.5):
libxml2 accepts ``%%%MIIB…`` as base64Binary, ``xs:dateTime`` does not
require a timezone, and a base64 certificate may hide trailing bytes. These
readers accept only the canonical spelling and raise :class:`InvalidBody`
(which carries the response code) for anything else.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, timezone

from openecos.duis.errors import InvalidBody

_XML_WHITESPACE = re.compile(r"[ \t\r\n]+")
_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?"
)
_NON_NEGATIVE = re.compile(r"\+?[0-9]+")


def strict_base64(text: str, what: str) -> bytes:
    """Decodes xs:base64Binary text, refusing non-alphabet or non-canonical input.

    Whitespace is allowed between characters (the XSD collapses it; the JDK
    wraps at 76); the rest must re-encode to exactly the same characters, so
    stray padding or non-zero trailing bits are refused.
    """
    # Fast path: the usual certificate text has no whitespace at all.
    compact = _XML_WHITESPACE.sub("", text) if _has_whitespace(text) else text
    if not compact:
        raise InvalidBody(f"{what} is empty")
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBody(f"{what} is not base64: {exc}") from exc
    if base64.b64encode(raw).decode("ascii") != compact:
        raise InvalidBody(f"{what} is not canonical base64")
    return raw


def _has_whitespace(text: str) -> bool:
    return " " in text or "\n" in text or "\r" in text or "\t" in text


def der_certificate(data: bytes, what: str) -> bytes:
    """Checks ``data`` is exactly one definite-length DER SEQUENCE and returns it.

    Only the outer TLV is checked here (a Certificate is a SEQUENCE, DER uses
    the shortest length form, nothing may follow); the X.509 content is the
    SMKI layer's business.
    """
    if len(data) < 2 or data[0] != 0x30:
        raise InvalidBody(f"{what} is not a DER SEQUENCE")
    first = data[1]
    if first < 0x80:
        length, header = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise InvalidBody(f"{what} has an indefinite or oversized DER length")
        length = int.from_bytes(data[2 : 2 + count], "big")
        header = 2 + count
        # DER: the shortest form, no leading zero octets, long form only from 128.
        if length < 0x80 or data[2] == 0:
            raise InvalidBody(f"{what} has a non-minimal DER length")
    if header + length != len(data):
        extra = len(data) - header - length
        raise InvalidBody(
            f"{what}: DER SEQUENCE of {length} bytes, "
            + (f"{extra} trailing bytes" if extra > 0 else f"{-extra} bytes missing")
        )
    return data


def certificate_from_base64(text: str, what: str) -> bytes:
    """Strict base64, then the one-DER-SEQUENCE check."""
    return der_certificate(strict_base64(text, what), what)


def parse_datetime(text: str, what: str, *, require_timezone: bool = True) -> datetime:
    """Reads xs:dateTime as an aware UTC datetime; a timezone is required (docs §1.5).

    Fractions beyond microseconds are truncated (the instant, not the
    spelling, matters: ``…00.00Z`` equals ``…00Z``).
    """
    match = _DATETIME.fullmatch(text.strip(" \t\r\n"))
    if match is None:
        raise InvalidBody(f"{what} {text!r} is not an xs:dateTime")
    tz_text = match["tz"]
    if tz_text is None:
        if require_timezone:
            raise InvalidBody(f"{what} {text!r} has no timezone")
        tz: timezone = UTC
    elif tz_text == "Z":
        tz = UTC
    else:
        sign = -1 if tz_text[0] == "-" else 1
        hours, minutes = int(tz_text[1:3]), int(tz_text[4:6])
        if hours > 14 or minutes > 59 or (hours == 14 and minutes):
            raise InvalidBody(f"{what} {text!r} has an impossible timezone")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    try:
        value = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction),
            tzinfo=tz,
        )
    except ValueError as exc:  # 24:00:00, Feb 30, year 0 …
        raise InvalidBody(f"{what} {text!r} is not a valid date and time: {exc}") from exc
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """xs:dateTime in UTC with ``Z``, milliseconds as DCC Boxed writes them."""
    if value.tzinfo is None:
        raise ValueError("an xs:dateTime written by OpenECoS must be timezone-aware")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_boolean(text: str, what: str) -> bool:
    value = text.strip(" \t\r\n")
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidBody(f"{what} {text!r} is not an xs:boolean")


def parse_bounded_integer(text: str, what: str, maximum: int) -> int:
    value = text.strip(" \t\r\n")
    if not _NON_NEGATIVE.fullmatch(value) or len(value) > 40:
        raise InvalidBody(f"{what} {text!r} is not a non-negative integer")
    number = int(value)
    if number > maximum:
        raise InvalidBody(f"{what} {number} exceeds {maximum}")
    return number
