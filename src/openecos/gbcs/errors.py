"""The errors of the GBCS part.

Every failure the codec or the security functions detect on purpose is a
:class:`GbcsError`. A decoder failure carries the absolute byte offset in the
input where it was detected and a :class:`DecodeReason`, so a caller (the
device simulator, the CoS Party, a log line) can say exactly what was wrong
and where, without parsing a message string. Verification failures raise
(:class:`SignatureInvalid`, :class:`MacInvalid`); nothing returns ``False``.
"""

from __future__ import annotations

from enum import StrEnum

from openecos.errors import OpenEcosError


class GbcsError(OpenEcosError):
    """Base class of every error of :mod:`openecos.gbcs`."""


class DecodeReason(StrEnum):
    """Why bytes could not be decoded."""

    TRUNCATED = "truncated"
    UNEXPECTED_TAG = "unexpected tag"
    UNSUPPORTED_LENGTH_FORM = "unsupported length form"
    LENGTH_OVERRUN = "length runs past the enclosing element"
    TRAILING_BYTES = "trailing bytes"
    INTEGER_OUT_OF_RANGE = "integer out of range"
    INVALID_VALUE = "invalid value"
    UNSUPPORTED = "unsupported"


class DecodeError(GbcsError, ValueError):
    """Bytes that are not a well-formed GBCS frame or CS02a/CS02b payload.

    ``offset`` is the absolute offset, in the buffer given to the decoder, of
    the byte where the problem was detected (for a frame: from its first byte).
    """

    def __init__(self, reason: DecodeReason, offset: int, detail: str = "") -> None:
        self.reason = reason
        self.offset = offset
        self.detail = detail
        message = f"{reason.value} at offset {offset}"
        super().__init__(f"{message}: {detail}" if detail else message)


class EncodeError(GbcsError, ValueError):
    """A value that cannot be encoded (out of range, naive time, malformed certificate)."""


class SignatureInvalid(GbcsError):
    """A General-Signing APDU whose signature is absent or does not verify."""


class MacInvalid(GbcsError):
    """A General-Ciphering APDU whose GMAC tag is absent or does not verify."""


class MessageCodeMismatch(GbcsError):
    """A CS02b command whose credentialsReplacementMode disagrees with its message code.

    Raised only by :func:`openecos.gbcs.check_message_code`: the codec decodes
    what it is given, and the recipient (a meter) decides (docs/gbcs-cs02b.md §8.2).
    """

    def __init__(self, message_code: int, mode: int) -> None:
        self.message_code = message_code
        self.mode = mode
        super().__init__(
            f"message code 0x{message_code:04X} does not match credentialsReplacementMode {mode}"
        )
