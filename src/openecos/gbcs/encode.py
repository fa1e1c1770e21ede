"""Encoding the CS02a and CS02b contents (docs/gbcs-cs02b.md §4).

Theory of operation. Values are encoded bottom-up, DER field order and tags as
:mod:`openecos.gbcs.decode` reads them; DEFAULT fields are omitted
(cellUsage management, applyTimeBasedCPVChecks apply) and OPTIONAL ones that
are ``None``. Lengths follow a :class:`LengthStyle`: DER-minimal for commands,
the meters' ``82 00 LL`` to reproduce responses and alerts byte for byte.
Certificates are written verbatim, after a check that each is one whole DER
element (so the output decodes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import TypeVar

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
    RemotePartyDetails,
    TrustAnchorCellContents,
)
from openecos.gbcs.cs02b import (
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
from openecos.gbcs.decode import (
    ENUMERATED as _ENUMERATED,
)
from openecos.gbcs.decode import (
    EUI_SIZE as _EUI_SIZE,
)
from openecos.gbcs.decode import (
    INTEGER as _INTEGER,
)
from openecos.gbcs.decode import (
    KEY_ID_SIZE as _KEY_ID_SIZE,
)
from openecos.gbcs.decode import (
    KEY_USAGE_BITS as _KEY_USAGE_BITS,
)
from openecos.gbcs.decode import (
    OCTET_STRING as _OCTET_STRING,
)
from openecos.gbcs.decode import (
    SEQUENCE as _SEQUENCE,
)
from openecos.gbcs.decode import (
    Content,
)
from openecos.gbcs.errors import EncodeError
from openecos.gbcs.tlv import LengthStyle, element_length, encode_length, unsigned

T = TypeVar("T")


class _Encoder:
    """Builds TLVs bottom-up in one length style."""

    __slots__ = ("style",)

    def __init__(self, style: LengthStyle) -> None:
        self.style = style

    def tlv(self, tag: int, *parts: bytes) -> bytes:
        body = b"".join(parts)
        size = len(body)
        if size < 0x80:  # the short form: the same in every style, and most TLVs here
            return bytes((tag, size)) + body
        return bytes((tag,)) + encode_length(size, self.style) + body

    def seq_of(
        self, items: tuple[T, ...], encode: Callable[[T], bytes], tag: int = _SEQUENCE
    ) -> bytes:
        return self.tlv(tag, *[encode(item) for item in items])

    def cell(self, cell: TrustAnchorCellIdentifier, tag: int = _SEQUENCE) -> bytes:
        # A cell identifier is at most 12 bytes, so its encoding is the same in
        # every length style, and a command repeats the same few cells: cache them.
        return _encoded_cell(cell, tag)

    def specialist(self, item: SpecialistSeqNumber) -> bytes:
        return _encoded_specialist(item)

    def seq_change(self, change: RemotePartySeqNumberChange) -> bytes:
        return _encoded_seq_change(change, self.style)

    def replacement(self, replacement: TrustAnchorReplacement) -> bytes:
        return self.tlv(
            _SEQUENCE,
            _checked_certificate(replacement.replacement_certificate),
            self.cell(replacement.target_trust_anchor_cell),
        )

    def outcome(self, outcome: ReplacementOutcome) -> bytes:
        return self.tlv(
            _SEQUENCE,
            self.cell(outcome.affected_trust_anchor_cell),
            unsigned(_ENUMERATED, StatusCode(outcome.status_code)),
            _octets(outcome.existing_subject_unique_id.value, _EUI_SIZE),
            _octets(outcome.existing_subject_key_id, _KEY_ID_SIZE),
            _octets(outcome.replacing_subject_unique_id.value, _EUI_SIZE),
            _octets(outcome.replacing_subject_key_id, _KEY_ID_SIZE),
        )

    def execution_outcome(self, outcome: ExecutionOutcome) -> bytes:
        return self.tlv(
            _SEQUENCE,
            unsigned(_INTEGER, outcome.authorising_remote_party_seq_number),
            unsigned(_INTEGER, CredentialsReplacementMode(outcome.credentials_replacement_mode)),
            self.seq_of(outcome.remote_party_seq_number_changes, self.seq_change),
            self.seq_of(outcome.replacement_outcomes, self.outcome),
        )

    def cell_contents(self, contents: TrustAnchorCellContents) -> bytes:
        usage = CellUsage(contents.cell_usage)
        return self.tlv(
            _SEQUENCE,
            _KEY_USAGE_BITS[KeyUsage(contents.key_usage)],
            b"" if usage is CellUsage.MANAGEMENT else unsigned(_INTEGER, usage),
            _octets(contents.subject_unique_id.value, _EUI_SIZE),
            _octets(contents.subject_key_identifier, _KEY_ID_SIZE),
        )

    def party_details(self, details: RemotePartyDetails) -> bytes:
        parts = [
            unsigned(_INTEGER, RemotePartyRole(details.remote_party_role), 0xFF),
            unsigned(_ENUMERATED, StatusCode(details.status_code)),
        ]
        if (details.current_seq_number is None) != (details.trust_anchor_cell_details is None):
            raise EncodeError("currentSeqNumber and trustAnchorCellDetails come together")
        if details.current_seq_number is not None and details.trust_anchor_cell_details is not None:
            parts.append(unsigned(_INTEGER, details.current_seq_number))
            parts.append(self.seq_of(details.trust_anchor_cell_details, self.cell_contents))
        return self.tlv(_SEQUENCE, *parts)

    def content(self, value: Content) -> bytes:
        if isinstance(value, UpdateSecurityCredentialsCommand):
            return _command(value, self.style)
        if isinstance(value, UpdateSecurityCredentialsResponse):
            outcome = value.execution_outcome
            return self.tlv(
                _SEQUENCE, b"\x05\x00", b"" if outcome is None else self.execution_outcome(outcome)
            )
        if isinstance(value, UpdateSecurityCredentialsAlert):
            return self.tlv(
                _SEQUENCE,
                unsigned(_INTEGER, AlertCode(value.alert_code), 0xFFFF),
                _time_bytes(value.execution_date_time),
                self.execution_outcome(value.execution_outcome),
            )
        if isinstance(value, ProvideSecurityCredentialDetailsCommand):
            return self.tlv(
                _SEQUENCE,
                self.cell(value.authorising_remote_party_ta_cell),
                self.seq_of(
                    value.remote_party_roles,
                    lambda role: unsigned(_INTEGER, RemotePartyRole(role), 0xFF),
                ),
            )
        if isinstance(value, ProvideSecurityCredentialDetailsResponse):
            return self.seq_of(value.remote_party_details, self.party_details)
        raise EncodeError(f"not a CS02a/CS02b content value: {type(value).__name__}")


def _codes(
    table: type[RemotePartyRole | CredentialsReplacementMode | SeqNumberUsage], maximum: int
) -> dict[int, bytes]:
    return {int(code): unsigned(_INTEGER, code, maximum) for code in table}


_ROLES = _codes(RemotePartyRole, 0xFF)
_MODES = _codes(CredentialsReplacementMode, 0xFFFF)
_SEQ_NUMBER_USAGES = _codes(SeqNumberUsage, 0xFFFF)


def _member(table: dict[int, bytes], code: int, what: str) -> bytes:
    """The INTEGER encoding of ``code``; raises EncodeError unless it is a member."""
    try:
        return table[code]
    except (KeyError, TypeError):
        raise EncodeError(f"{code!r} is not a valid {what}") from None


# Command templates (see _command). Bounded: a full cache is emptied and fills again.
_TEMPLATES: dict[
    tuple[bytes, int, LengthStyle],
    tuple[tuple[object, ...], bytes, bytes],
] = {}
_CONTROL_REST = attrgetter(
    "plaintext_symmetric_key",
    "credentials_replacement_mode",
    "apply_time_based_cpv_checks",
    "new_remote_party_floor_seq_number",
    "authorising_remote_party_ta_cell",
    "new_remote_party_specialist_floor_seq_numbers",
    "other_remote_party_seq_number_changes",
)
"""Every field of a command's control block but its seq number, in one C call."""
_REMEMBERED_LIMIT = 512


def _command(value: UpdateSecurityCredentialsCommand, style: LengthStyle) -> bytes:
    # The build hot path (bench/gbcs_codec.py measures it against one ECDSA sign). From
    # one CoS command to the next only the seq number changes: the supplier's
    # certificates, path, cells and floors recur. So the content is remembered as a
    # template, the bytes before and after the [3] seq number, keyed by what hashes in
    # C (the first certificate's bytes, which cache their hash) and checked by == against
    # every other field (codes, certificates, cells, floors, path, time: frozen values
    # would hash in Python; compared, they cost nothing when they are the very objects
    # seen before, as a service's constant cells are, and a memcmp for certificates).
    # Few bytecodes matter here: after the signature's big-number work the interpreter
    # runs with cold caches and branch predictors.
    seq = value.authorising_remote_party_control.authorising_remote_party_seq_number
    seq_bytes = (  # the usual two-byte [3] seq number inline: 83 02 HH LL as one integer
        (0x8302_0000 + seq).to_bytes(4) if 0x80 <= seq < 0x8000 else unsigned(0x83, seq)
    )
    replacements = value.replacements
    key = (replacements[0].replacement_certificate if replacements else b"", len(seq_bytes), style)
    rest = (
        _CONTROL_REST(value.authorising_remote_party_control),
        value.certification_path,
        value.execution_date_time,
        [(r.replacement_certificate, r.target_trust_anchor_cell) for r in replacements],
    )
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] == rest and rest[0][0] is None:
        return b"".join((hit[1], seq_bytes, hit[2]))
    content, seq_at = _command_afresh(value, style, seq_bytes)
    if rest[0][0] is None:  # a plaintext key is never remembered
        if len(_TEMPLATES) >= _REMEMBERED_LIMIT:
            _TEMPLATES.clear()
        _TEMPLATES[key] = (rest, content[:seq_at], content[seq_at + len(seq_bytes) :])
    return content


def _command_afresh(
    value: UpdateSecurityCredentialsCommand, style: LengthStyle, seq_bytes: bytes
) -> tuple[bytes, int]:
    """The command's content and the offset of its ``[3]`` seq number in it."""
    control = value.authorising_remote_party_control
    before, after = _control_sections(
        control.credentials_replacement_mode,
        control.apply_time_based_cpv_checks,
        control.new_remote_party_floor_seq_number,
        style,
        control.authorising_remote_party_ta_cell,
        control.new_remote_party_specialist_floor_seq_numbers,
        control.other_remote_party_seq_number_changes,
    )
    encoder = _Encoder(style)
    secret = control.plaintext_symmetric_key
    if secret is not None:  # [0] plaintextSymmetricKey follows the 3-byte mode
        before = b"".join((before[:3], encoder.tlv(0x80, secret), before[3:]))
    control_bytes = encoder.tlv(_SEQUENCE, before, seq_bytes, after)
    seq_at = len(control_bytes) - len(after) - len(seq_bytes)
    when = value.execution_date_time
    parts = (
        control_bytes,
        encoder.seq_of(value.replacements, encoder.replacement),
        encoder.seq_of(value.certification_path, _checked_certificate),
        b"" if when is None else _time_bytes(when),
    )
    content = encoder.tlv(_SEQUENCE, *parts)
    header = len(content) - sum(map(len, parts))
    return content, header + seq_at


def _control_sections(
    mode: int,
    apply_checks: bool,
    floor: int | None,
    style: LengthStyle,
    cell: TrustAnchorCellIdentifier | None,
    specialist: tuple[SpecialistSeqNumber, ...] | None,
    changes: tuple[RemotePartySeqNumberChange, ...] | None,
) -> tuple[bytes, bytes]:
    """The control block's encoding before and after its ``[3]`` seq number (§4).

    ``before`` starts with the 3-byte mode, where the caller inserts a ``[0]`` key.
    """
    before = [_member(_MODES, mode, "replacement mode")]
    if not apply_checks:
        before.append(b"\x81\x01\x01")  # disapply(1); apply is the default, omitted
    if cell is not None:
        before.append(_encoded_cell(cell, 0xA2))
    after = []
    if floor is not None:
        after.append(unsigned(0x84, floor))
    encoder = _Encoder(style)
    if specialist is not None:
        after.append(encoder.seq_of(specialist, _encoded_specialist, 0xA5))
    if changes is not None:
        after.append(encoder.tlv(0xA6, *[_encoded_seq_change(change, style) for change in changes]))
    return b"".join(before), b"".join(after)


def _encoded_specialist(item: SpecialistSeqNumber) -> bytes:
    body = _member(_SEQ_NUMBER_USAGES, item.seq_number_usage, "seq number usage") + unsigned(
        _INTEGER, item.seq_number
    )
    return bytes((_SEQUENCE, len(body))) + body  # at most 3 + 11 bytes: the short form


def _encoded_seq_change(change: RemotePartySeqNumberChange, style: LengthStyle) -> bytes:
    specialist = change.specialist_floor_seq_numbers
    return _Encoder(style).tlv(
        _SEQUENCE,
        _member(_ROLES, change.remote_party_role, "remote party role"),
        unsigned(_INTEGER, change.floor_seq_number),
        b"" if specialist is None else _Encoder(style).seq_of(specialist, _encoded_specialist),
    )


def _octets(value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise EncodeError(f"{size} bytes expected, got {len(value)}")
    return bytes((_OCTET_STRING, size)) + value


@lru_cache(maxsize=64)
def _encoded_cell(cell: TrustAnchorCellIdentifier, tag: int) -> bytes:
    usage = CellUsage(cell.cell_usage)
    body = b"".join(
        (
            unsigned(_INTEGER, RemotePartyRole(cell.remote_party_role), 0xFF),
            _KEY_USAGE_BITS[KeyUsage(cell.key_usage)],
            b"" if usage is CellUsage.MANAGEMENT else unsigned(_INTEGER, usage),
        )
    )
    return bytes((tag,)) + encode_length(len(body)) + body


@lru_cache(maxsize=1024)
def _checked_certificate(certificate: bytes) -> bytes:
    # Opaque DER, copied verbatim; only check it is one whole SEQUENCE so the result decodes.
    # Cached: the certification path recurs in every command, and bytes cache their hash.
    if (
        not certificate
        or certificate[0] != _SEQUENCE
        or element_length(certificate) != len(certificate)
    ):
        raise EncodeError("a certificate must be exactly one DER SEQUENCE")
    return certificate


def _time_bytes(value: datetime) -> bytes:
    if value.tzinfo is None:
        raise EncodeError("GBCS times are UTC: give an aware datetime")
    utc = value.astimezone(UTC)
    if utc.microsecond:
        raise EncodeError("GBCS GeneralizedTime has whole seconds")
    text = (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"
    )
    return b"\x18\x0f" + text.encode("ascii")


command_content = _command
"""The content of a CS02b command (:func:`encode_content` for that type; for the builder)."""


def encode_content(value: Content, style: LengthStyle = LengthStyle.DER) -> bytes:
    """Encodes a CS02a/CS02b content value.

    Commands are DER (the default); a simulated meter passes
    :attr:`LengthStyle.DEVICE` to write responses and alerts as RTDS meters do.
    Raises :class:`EncodeError` for values outside their ASN.1 range.
    """
    try:
        if type(value) is UpdateSecurityCredentialsCommand:  # the hot path: the CoS command
            return _command(value, style)
        return _Encoder(style).content(value)
    except ValueError as exc:  # an int that is no member of its code table
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(str(exc)) from None
