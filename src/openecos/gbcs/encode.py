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
        return self.tlv(
            _SEQUENCE,
            unsigned(_INTEGER, SeqNumberUsage(item.seq_number_usage)),
            unsigned(_INTEGER, item.seq_number),
        )

    def seq_change(self, change: RemotePartySeqNumberChange) -> bytes:
        specialist = change.specialist_floor_seq_numbers
        return self.tlv(
            _SEQUENCE,
            unsigned(_INTEGER, RemotePartyRole(change.remote_party_role), 0xFF),
            unsigned(_INTEGER, change.floor_seq_number),
            b"" if specialist is None else self.seq_of(specialist, self.specialist),
        )

    def control(self, control: AuthorisingRemotePartyControl) -> bytes:
        parts = [
            unsigned(_INTEGER, CredentialsReplacementMode(control.credentials_replacement_mode))
        ]
        if control.plaintext_symmetric_key is not None:
            parts.append(self.tlv(0x80, control.plaintext_symmetric_key))
        if not control.apply_time_based_cpv_checks:
            parts.append(b"\x81\x01\x01")  # disapply(1); apply is the default, omitted
        if control.authorising_remote_party_ta_cell is not None:
            parts.append(self.cell(control.authorising_remote_party_ta_cell, 0xA2))
        parts.append(unsigned(0x83, control.authorising_remote_party_seq_number))
        if control.new_remote_party_floor_seq_number is not None:
            parts.append(unsigned(0x84, control.new_remote_party_floor_seq_number))
        if control.new_remote_party_specialist_floor_seq_numbers is not None:
            specialist = control.new_remote_party_specialist_floor_seq_numbers
            parts.append(self.seq_of(specialist, self.specialist, 0xA5))
        if control.other_remote_party_seq_number_changes is not None:
            changes = control.other_remote_party_seq_number_changes
            parts.append(self.seq_of(changes, self.seq_change, 0xA6))
        return self.tlv(_SEQUENCE, *parts)

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
            return self.tlv(
                _SEQUENCE,
                self.control(value.authorising_remote_party_control),
                _encoded_replacements(value.replacements, self.style),
                _encoded_certification_path(value.certification_path, self.style),
                b""
                if value.execution_date_time is None
                else _time_bytes(value.execution_date_time),
            )
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


# A supplier sends the same three certificates and the same certification path in
# every 6.23 it sends, so the CoS Party encodes the same sections again and again:
# they make up most of a command's bytes and of its encoding time. Values are
# frozen and hashable (bytes cache their hash), so the sections are cached whole.


@lru_cache(maxsize=512)
def _encoded_replacements(
    replacements: tuple[TrustAnchorReplacement, ...], style: LengthStyle
) -> bytes:
    encoder = _Encoder(style)
    return encoder.seq_of(replacements, encoder.replacement)


@lru_cache(maxsize=64)
def _encoded_certification_path(path: tuple[bytes, ...], style: LengthStyle) -> bytes:
    return _Encoder(style).seq_of(path, _checked_certificate)


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


def encode_content(value: Content, style: LengthStyle = LengthStyle.DER) -> bytes:
    """Encodes a CS02a/CS02b content value.

    Commands are DER (the default); a simulated meter passes
    :attr:`LengthStyle.DEVICE` to write responses and alerts as RTDS meters do.
    Raises :class:`EncodeError` for values outside their ASN.1 range.
    """
    try:
        return _Encoder(style).content(value)
    except ValueError as exc:  # an int that is no member of its code table
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(str(exc)) from None
