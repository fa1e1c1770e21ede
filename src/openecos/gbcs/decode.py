"""Decoding the CS02b contents (docs/gbcs-cs02b.md §4), and the primitives CS02a shares.

Theory of operation. Hand-written and positional, over the frame's own
``bytes`` with ``(pos, end)`` bounds: each ``_x`` function takes the offset of
its element and the end of the enclosing one and returns ``(value, offset
after it)``, so errors carry absolute frame offsets and nothing is copied but
the leaves (certificates, identifiers). OPTIONAL fields are recognised by
their tags, as GBCS defines them. Lengths may be minimal or the meters'
``82 00 LL`` (:mod:`openecos.gbcs.tlv`).

Decoding sits on the CoS Party's hot path (every 6.23 is decoded and
verified), and the budget is 15 % over the crypto it precedes; so the common
one-byte integers are read inline, trust-anchor cells are memoised by their
bytes, and values are built with :func:`openecos.gbcs._fast.constructor`.

The codec decodes what it is given: whether a command's mode fits its
message code is for :func:`openecos.gbcs.payload.check_message_code`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from openecos.eui import Eui64
from openecos.gbcs._fast import constructor, twin_of
from openecos.gbcs.codes import (
    AlertCode,
    CellUsage,
    CredentialsReplacementMode,
    KeyUsage,
    RemotePartyRole,
    SeqNumberUsage,
    StatusCode,
)
from openecos.gbcs.cs02a import (
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
)
from openecos.gbcs.cs02b import (
    AuthorisingRemotePartyControl,
    ExecutionOutcome,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    SpecialistSeqNumber,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
)
from openecos.gbcs.errors import DecodeError, DecodeReason
from openecos.gbcs.tlv import read_octets, read_tlv, read_unsigned

T = TypeVar("T")

Content = (
    UpdateSecurityCredentialsCommand
    | UpdateSecurityCredentialsResponse
    | UpdateSecurityCredentialsAlert
    | ProvideSecurityCredentialDetailsCommand
    | ProvideSecurityCredentialDetailsResponse
)
"""Any CS02a/CS02b content value."""

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
ENUMERATED = 0x0A
GENERALIZED_TIME = 0x18
EUI_SIZE = 8
KEY_ID_SIZE = 8
KEY_USAGE_BITS = {
    # Named-bit BIT STRINGs with trailing zero bits removed, as in X.509 (§4).
    KeyUsage.DIGITAL_SIGNATURE: b"\x03\x02\x07\x80",
    KeyUsage.KEY_AGREEMENT: b"\x03\x02\x03\x08",
}
_KEY_USAGES = {bits: usage for usage, bits in KEY_USAGE_BITS.items()}
_ROLES = {role.value: role for role in RemotePartyRole}
_MODES = {mode.value: mode for mode in CredentialsReplacementMode}
_STATUSES = {status.value: status for status in StatusCode}
_ALERTS = {alert.value: alert for alert in AlertCode}
_CELL_USAGES = {usage.value: usage for usage in CellUsage}
_MANAGEMENT = CellUsage.MANAGEMENT  # enum attribute access is slow on 3.11
_SEQ_NUMBER_USAGES = {usage.value: usage for usage in SeqNumberUsage}

# Field order of each class, as constructor() takes them.
_new_eui = constructor(Eui64)
_new_cell = constructor(TrustAnchorCellIdentifier)
_new_specialist = constructor(SpecialistSeqNumber)
_new_seq_change = constructor(RemotePartySeqNumberChange)
_new_control = constructor(AuthorisingRemotePartyControl)
_new_replacement = constructor(TrustAnchorReplacement)
_new_command = constructor(UpdateSecurityCredentialsCommand)
_new_replacement_outcome = constructor(ReplacementOutcome)
_new_execution_outcome = constructor(ExecutionOutcome)
_new_response = constructor(UpdateSecurityCredentialsResponse)
_new_alert = constructor(UpdateSecurityCredentialsAlert)
_ControlTwin: Any = twin_of(_new_control)
_CommandTwin: Any = twin_of(_new_command)

# Trust-anchor cells recur in every command and response and take a few dozen values:
# decoded cells are remembered by their exact bytes (tag included). Bounded, so hostile
# input cannot grow it; a full cache only means slower decoding.
_CELL_CACHE: dict[bytes, TrustAnchorCellIdentifier] = {}
_CELL_CACHE_LIMIT = 256
# Likewise the otherRemotePartySeqNumberChanges of CoS commands (the supplier's floors);
# these caches are emptied when full, so they follow a service's changing suppliers.
_CHANGES_CACHE: dict[bytes, tuple[RemotePartySeqNumberChange, ...]] = {}
_CACHE_LIMIT = 256
# And a supplier's commands as templates around the seq number (see _command): the
# control's mode and other fields, and the replacements, path and execution time.
_COMMAND_CACHE: dict[
    tuple[bytes, bytes],
    tuple[
        CredentialsReplacementMode,
        tuple[object, ...],
        tuple[tuple[TrustAnchorReplacement, ...], tuple[bytes, ...], datetime | None],
    ],
] = {}
_TAIL_SIZE_LIMIT = 16384
"""Four SMKI certificates take under 2 KiB; a larger command is decoded, never kept."""
_CONTROL_REST = attrgetter(
    "authorising_remote_party_ta_cell",
    "plaintext_symmetric_key",
    "apply_time_based_cpv_checks",
    "new_remote_party_floor_seq_number",
    "new_remote_party_specialist_floor_seq_numbers",
    "other_remote_party_seq_number_changes",
)
"""The control's fields after mode and seq number, in declaration order."""
_COMMAND_REST = attrgetter("replacements", "certification_path", "execution_date_time")


# -- primitives -------------------------------------------------------------------------------


def _trailing(pos: int, end: int) -> DecodeError:
    return DecodeError(DecodeReason.TRAILING_BYTES, pos, f"{end - pos} unexpected bytes")


def _unknown(what: str, value: int, at: int) -> DecodeError:
    return DecodeError(DecodeReason.INVALID_VALUE, at, f"unknown {what} {value}")


def _code(
    table: Mapping[int, T], what: str, buf: bytes, pos: int, end: int, tag: int
) -> tuple[T, int]:
    """A small INTEGER/ENUMERATED that must be a member of ``table``."""
    if pos + 2 < end and buf[pos] == tag and buf[pos + 1] == 1:  # the usual one-byte form
        found = table.get(buf[pos + 2])
        if found is not None:
            return found, pos + 3
    value, stop = read_unsigned(buf, pos, end, tag, 0xFFFF)
    found = table.get(value)
    if found is None:
        raise _unknown(what, value, pos)
    return found, stop


def _key_usage(buf: bytes, pos: int, end: int) -> tuple[KeyUsage, int]:
    usage = _KEY_USAGES.get(buf[pos : pos + 4])
    if usage is None or pos + 4 > end:
        read_tlv(buf, pos, end, 0x03)  # a truncation or a wrong tag is reported as such
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, "key usage must be DS or KA")
    return usage, pos + 4


def _optional_cell_usage(buf: bytes, pos: int, end: int) -> tuple[CellUsage, int]:
    if pos < end and buf[pos] == INTEGER:
        return _code(_CELL_USAGES, "cell usage", buf, pos, end, INTEGER)
    return _MANAGEMENT, pos


def _eui(buf: bytes, pos: int, end: int) -> tuple[Eui64, int]:
    value, stop = read_octets(buf, pos, end, OCTET_STRING, EUI_SIZE)
    return _new_eui(value), stop


def _time(buf: bytes, pos: int, end: int) -> tuple[datetime, int]:
    start, stop = read_tlv(buf, pos, end, GENERALIZED_TIME)
    text = buf[start:stop]
    # GBCS GeneralizedTime is exactly YYYYMMDDhhmmssZ (§4).
    if len(text) != 15 or text[14] != 0x5A or not text[:14].isdigit():
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, "GeneralizedTime YYYYMMDDhhmmssZ")
    try:
        value = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        raise DecodeError(DecodeReason.INVALID_VALUE, pos, "no such date-time") from None
    return value, stop


def _sequence_of(
    buf: bytes,
    pos: int,
    end: int,
    item: Callable[[bytes, int, int], tuple[T, int]],
    tag: int = SEQUENCE,
) -> tuple[tuple[T, ...], int]:
    start, stop = read_tlv(buf, pos, end, tag)
    items: list[T] = []
    while start < stop:
        value, start = item(buf, start, stop)
        items.append(value)
    return tuple(items), stop


def _role(buf: bytes, pos: int, end: int) -> tuple[RemotePartyRole, int]:
    return _code(_ROLES, "remote party role", buf, pos, end, INTEGER)


# -- CS02b ------------------------------------------------------------------------------------


def _cell(
    buf: bytes, pos: int, end: int, tag: int = SEQUENCE
) -> tuple[TrustAnchorCellIdentifier, int]:
    if pos + 1 < end and buf[pos] == tag and buf[pos + 1] < 0x80:
        stop = pos + 2 + buf[pos + 1]
        if stop <= end:
            cached = _CELL_CACHE.get(buf[pos:stop])
            if cached is not None:
                return cached, stop
    start, stop = read_tlv(buf, pos, end, tag)
    role, at = _role(buf, start, stop)
    usage, at = _key_usage(buf, at, stop)
    cell_usage, at = _optional_cell_usage(buf, at, stop)
    if at != stop:
        raise _trailing(at, stop)
    cell: TrustAnchorCellIdentifier = _new_cell(role, usage, cell_usage)
    if start == pos + 2 and len(_CELL_CACHE) < _CELL_CACHE_LIMIT:
        _CELL_CACHE[buf[pos:stop]] = cell
    return cell, stop


def _specialists(
    buf: bytes, pos: int, end: int, tag: int = SEQUENCE
) -> tuple[tuple[SpecialistSeqNumber, ...], int]:
    at, stop = read_tlv(buf, pos, end, tag)
    items = []
    while at < stop:
        start, item_stop = read_tlv(buf, at, stop, SEQUENCE)
        usage, at = _code(_SEQ_NUMBER_USAGES, "seq number usage", buf, start, item_stop, INTEGER)
        seq, at = read_unsigned(buf, at, item_stop, INTEGER)
        if at != item_stop:
            raise _trailing(at, item_stop)
        items.append(_new_specialist(usage, seq))
    return tuple(items), stop


def _seq_change(buf: bytes, pos: int, end: int) -> tuple[RemotePartySeqNumberChange, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    role, at = _code(_ROLES, "remote party role", buf, start, stop, INTEGER)
    floor, at = read_unsigned(buf, at, stop, INTEGER)
    specialist = None
    if at < stop:
        specialist, at = _specialists(buf, at, stop)
        if at != stop:
            raise _trailing(at, stop)
    return _new_seq_change(role, floor, specialist), stop


def _control(buf: bytes, pos: int, end: int) -> tuple[AuthorisingRemotePartyControl, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    mode: CredentialsReplacementMode | None = None
    if start + 3 <= stop and buf[start] == INTEGER and buf[start + 1] == 1:
        mode = _MODES.get(buf[start + 2])
        at = start + 3
    if mode is None:
        mode, at = _code(_MODES, "credentials replacement mode", buf, start, stop, INTEGER)
    tag = buf[at] if at < stop else -1
    key = None
    if tag == 0x80:
        key_start, key_stop = read_tlv(buf, at, stop, 0x80)
        key, at = buf[key_start:key_stop], key_stop
        tag = buf[at] if at < stop else -1
    apply_checks = True
    if tag == 0x81:
        value, at = read_unsigned(buf, at, stop, 0x81, 1)
        apply_checks = value == 0  # apply(0), disapply(1)
        tag = buf[at] if at < stop else -1
    cell = None
    if tag == 0xA2:
        cell, at = _cell(buf, at, stop, 0xA2)
    seq, at = read_unsigned(buf, at, stop, 0x83)
    tag = buf[at] if at < stop else -1
    floor = None
    if tag == 0x84:
        floor, at = read_unsigned(buf, at, stop, 0x84)
        tag = buf[at] if at < stop else -1
    specialist = None
    if tag == 0xA5:
        specialist, at = _specialists(buf, at, stop, 0xA5)
        tag = buf[at] if at < stop else -1
    changes = None
    if tag == 0xA6:
        # The floors a CoS command sets recur command after command: remembered by bytes.
        if at + 1 < stop and buf[at + 1] < 0x80 and at + 2 + buf[at + 1] <= stop:
            section = buf[at : at + 2 + buf[at + 1]]
            changes = _CHANGES_CACHE.get(section)
            if changes is None:
                changes, at = _sequence_of(buf, at, stop, _seq_change, 0xA6)
                if len(_CHANGES_CACHE) >= _CACHE_LIMIT:
                    _CHANGES_CACHE.clear()
                _CHANGES_CACHE[section] = changes
            else:
                at += len(section)
        else:
            changes, at = _sequence_of(buf, at, stop, _seq_change, 0xA6)
    if at != stop:
        raise _trailing(at, stop)
    control = _new_control(mode, seq, cell, key, apply_checks, floor, specialist, changes)
    return control, stop


def _replacements(buf: bytes, pos: int, end: int) -> tuple[tuple[TrustAnchorReplacement, ...], int]:
    # SEQUENCE OF SEQUENCE { certificate, cell }; the loop is inlined (hot path).
    at, stop = read_tlv(buf, pos, end, SEQUENCE)
    items = []
    cache = _CELL_CACHE
    while at < stop:
        # Inline fast path for the usual `30 82 HH LL 30 82 HH LL <certificate> <cell>`;
        # anything else, or any overrun, goes through read_tlv, which reports it.
        start = at + 4
        if (
            at + 8 <= stop
            and buf[at] == SEQUENCE
            and buf[at + 1] == 0x82
            and buf[start] == SEQUENCE
            and buf[at + 5] == 0x82
        ):
            item_stop = start + ((buf[at + 2] << 8) | buf[at + 3])
            certificate_stop = at + 8 + ((buf[at + 6] << 8) | buf[at + 7])
            if item_stop > stop or certificate_stop > item_stop:
                start = -1
        else:
            start = -1
        if start < 0:
            start, item_stop = read_tlv(buf, at, stop, SEQUENCE)
            certificate_stop = read_tlv(buf, start, item_stop, SEQUENCE)[1]
        # The cell ends the item: a cached cell is a dictionary hit on the item's tail.
        cell = cache.get(buf[certificate_stop:item_stop])
        if cell is None:
            cell, at = _cell(buf, certificate_stop, item_stop)
            if at != item_stop:
                raise _trailing(at, item_stop)
        items.append(_new_replacement(buf[start:certificate_stop], cell))
        at = item_stop
    return tuple(items), stop


def _certificates(buf: bytes, pos: int, end: int) -> tuple[tuple[bytes, ...], int]:
    at, stop = read_tlv(buf, pos, end, SEQUENCE)
    items = []
    while at < stop:
        start = at
        at = read_tlv(buf, at, stop, SEQUENCE)[1]
        items.append(buf[start:at])  # opaque DER as received (§4; never re-encoded)
    return tuple(items), stop


def _command(buf: bytes, pos: int, end: int) -> tuple[UpdateSecurityCredentialsCommand, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    # From one command to the next a supplier's commands differ in the seq number alone
    # (its cell, floors, certificates and path recur), so a command is remembered as a
    # template: its bytes before and after the [3] seq number's value key what they
    # decoded to. The usual control block starts 30 LL 02 01 <mode> A2 LL <cell> 83 LL:
    # with that shape _control reads the seq number from exactly those bytes, and what
    # it decodes from the others does not depend on them (only successes are kept).
    c = start
    if (
        stop - c > 9
        and buf[c] == SEQUENCE
        and buf[c + 2] == INTEGER
        and buf[c + 3] == 1
        and buf[c + 5] == 0xA2
        and buf[c + 6] < 0x80
    ):
        seq_start = c + 9 + buf[c + 6]
        seq_end = seq_start + buf[seq_start - 1]
        if (
            seq_end <= c + 2 + buf[c + 1] <= stop
            and buf[c + 1] < 0x80
            and buf[seq_start - 2] == 0x83
            and 0 < seq_end - seq_start <= 8  # so a u64 at most
            and buf[seq_start] < 0x80  # a positive INTEGER
            and stop - seq_end <= _TAIL_SIZE_LIMIT
        ):
            key = (buf[c:seq_start], buf[seq_end:stop])
            hit = _COMMAND_CACHE.get(key)
            seq = int.from_bytes(buf[seq_start:seq_end], "big")
            if hit is not None:
                control = _ControlTwin(hit[0], seq, *hit[1])
                control.__class__ = AuthorisingRemotePartyControl
                command = _CommandTwin(control, *hit[2])
                command.__class__ = UpdateSecurityCredentialsCommand
                return command, stop
            value = _command_afresh(buf, start, stop)[0]
            control = value.authorising_remote_party_control
            if control.authorising_remote_party_seq_number == seq:
                if len(_COMMAND_CACHE) >= _CACHE_LIMIT:
                    _COMMAND_CACHE.clear()
                _COMMAND_CACHE[key] = (
                    control.credentials_replacement_mode,
                    _CONTROL_REST(control),
                    _COMMAND_REST(value),
                )
            return value, stop
    return _command_afresh(buf, start, stop)[0], stop


def _command_afresh(
    buf: bytes, start: int, stop: int
) -> tuple[UpdateSecurityCredentialsCommand, int]:
    control, at = _control(buf, start, stop)
    replacements, at = _replacements(buf, at, stop)
    path, at = _certificates(buf, at, stop)
    when = None
    if at < stop:
        when, at = _time(buf, at, stop)
        if at != stop:
            raise _trailing(at, stop)
    return _new_command(control, replacements, path, when), stop


def _replacement_outcome(buf: bytes, pos: int, end: int) -> tuple[ReplacementOutcome, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    cell, at = _cell(buf, start, stop)
    status, at = _code(_STATUSES, "status code", buf, at, stop, ENUMERATED)
    existing_id, at = _eui(buf, at, stop)
    existing_key, at = read_octets(buf, at, stop, OCTET_STRING, KEY_ID_SIZE)
    replacing_id, at = _eui(buf, at, stop)
    replacing_key, at = read_octets(buf, at, stop, OCTET_STRING, KEY_ID_SIZE)
    if at != stop:
        raise _trailing(at, stop)
    outcome = _new_replacement_outcome(
        cell, status, existing_id, existing_key, replacing_id, replacing_key
    )
    return outcome, stop


def _execution_outcome(buf: bytes, pos: int, end: int) -> tuple[ExecutionOutcome, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    seq, at = read_unsigned(buf, start, stop, INTEGER)
    mode, at = _code(_MODES, "credentials replacement mode", buf, at, stop, INTEGER)
    changes, at = _sequence_of(buf, at, stop, _seq_change)
    outcomes, at = _sequence_of(buf, at, stop, _replacement_outcome)
    if at != stop:
        raise _trailing(at, stop)
    return _new_execution_outcome(seq, mode, changes, outcomes), stop


def _response(buf: bytes, pos: int, end: int) -> tuple[UpdateSecurityCredentialsResponse, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    null_start, at = read_tlv(buf, start, stop, NULL)
    if at != null_start:
        raise DecodeError(DecodeReason.INVALID_VALUE, start, "commandAccepted is NULL")
    outcome = None
    if at < stop:
        outcome, at = _execution_outcome(buf, at, stop)
        if at != stop:
            raise _trailing(at, stop)
    return _new_response(outcome), stop


def _alert(buf: bytes, pos: int, end: int) -> tuple[UpdateSecurityCredentialsAlert, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    alert_code, at = _code(_ALERTS, "alert code", buf, start, stop, INTEGER)
    when, at = _time(buf, at, stop)
    outcome, at = _execution_outcome(buf, at, stop)
    if at != stop:
        raise _trailing(at, stop)
    return _new_alert(alert_code, when, outcome), stop


# -- public -----------------------------------------------------------------------------------


def _whole(
    decode: Callable[[bytes, int, int], tuple[T, int]], data: bytes, start: int, end: int | None
) -> T:
    if not isinstance(data, bytes):
        data = bytes(data)
    stop = len(data) if end is None else end
    if not 0 <= start <= stop <= len(data):
        raise ValueError(f"bad bounds {start}:{stop} for {len(data)} bytes")
    value, at = decode(data, start, stop)
    if at != stop:
        raise _trailing(at, stop)
    return value


def command_in_frame(buf: bytes, start: int, end: int) -> UpdateSecurityCredentialsCommand:
    """:func:`decode_update_security_credentials_command` for content bounds a frame vouches for.

    :func:`openecos.gbcs.payload.decode_payload` uses it: ``decode_frame`` has checked
    ``buf`` is bytes and ``start <= end <= len(buf)``, so only the decoding is left.
    """
    value, at = _command(buf, start, end)
    if at != end:
        raise _trailing(at, end)
    return value


def decode_update_security_credentials_command(
    data: bytes, start: int = 0, end: int | None = None
) -> UpdateSecurityCredentialsCommand:
    """Decodes CS02b command content that occupies ``data[start:end]`` exactly.

    Error offsets are offsets in ``data``. Likewise the other ``decode_*``.
    """
    return _whole(_command, data, start, end)


def decode_update_security_credentials_response(
    data: bytes, start: int = 0, end: int | None = None
) -> UpdateSecurityCredentialsResponse:
    return _whole(_response, data, start, end)


def decode_update_security_credentials_alert(
    data: bytes, start: int = 0, end: int | None = None
) -> UpdateSecurityCredentialsAlert:
    return _whole(_alert, data, start, end)
