"""CS02b "Update Security Credentials" values: command, response, 0x00CB alert.

Theory of operation. These are plain frozen values named after the GBCS
ASN.1 (docs/gbcs-cs02b.md §4), with no behaviour beyond a few derived
properties; :mod:`openecos.gbcs.asn1` encodes and decodes them. Absent
OPTIONAL fields are ``None``; an empty SEQUENCE OF that is present on the wire
is ``()``, so decoding and re-encoding keeps ``A5 00`` apart from nothing.
DEFAULT fields (cellUsage management, applyTimeBasedCPVChecks apply) are
omitted when encoded, as DER and RTDS do.

Certificates are carried as the exact DER bytes received and are never
re-encoded: byte equality with RTDS depends on it, and the SMKI part parses
them when it needs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from openecos.eui import Eui64
from openecos.gbcs.codes import (
    AlertCode,
    CellUsage,
    CredentialsReplacementMode,
    KeyUsage,
    RemotePartyRole,
    SeqNumberUsage,
    StatusCode,
)

CANCELLATION_DATE_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
"""executionDateTime ``99991231235959Z``: cancels the pending future-dated command (§4)."""


@dataclass(frozen=True, slots=True)
class TrustAnchorCellIdentifier:
    """A trust-anchor cell: ``SEQUENCE { remotePartyRole, keyUsage, cellUsage DEFAULT mgmt }``."""

    remote_party_role: RemotePartyRole
    key_usage: KeyUsage
    cell_usage: CellUsage = CellUsage.MANAGEMENT


@dataclass(frozen=True, slots=True)
class SpecialistSeqNumber:
    """``SEQUENCE { seqNumberUsage, seqNumber }``; the only usage is prePaymentTopUp (0)."""

    seq_number_usage: SeqNumberUsage
    seq_number: int


@dataclass(frozen=True, slots=True)
class RemotePartySeqNumberChange:
    """New floor seq numbers for a remote party other than the authorising one."""

    remote_party_role: RemotePartyRole
    floor_seq_number: int
    specialist_floor_seq_numbers: tuple[SpecialistSeqNumber, ...] | None = None


@dataclass(frozen=True, slots=True)
class AuthorisingRemotePartyControl:
    """The control block: mode, authorising cell, replay protection, new floors (§4)."""

    credentials_replacement_mode: CredentialsReplacementMode
    authorising_remote_party_seq_number: int
    authorising_remote_party_ta_cell: TrustAnchorCellIdentifier | None = None
    plaintext_symmetric_key: bytes | None = None
    apply_time_based_cpv_checks: bool = True
    """[1] applyTimeBasedCPVChecks; ``False`` is disapply (``81 01 01``), ``True`` is omitted."""
    new_remote_party_floor_seq_number: int | None = None
    new_remote_party_specialist_floor_seq_numbers: tuple[SpecialistSeqNumber, ...] | None = None
    other_remote_party_seq_number_changes: tuple[RemotePartySeqNumberChange, ...] | None = None


@dataclass(frozen=True, slots=True)
class TrustAnchorReplacement:
    """One replacement: the new certificate (DER, verbatim) and the cell it goes to."""

    replacement_certificate: bytes
    target_trust_anchor_cell: TrustAnchorCellIdentifier


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentialsCommand:
    """The CS02b command content (message codes 0x0102-0x0109)."""

    authorising_remote_party_control: AuthorisingRemotePartyControl
    replacements: tuple[TrustAnchorReplacement, ...]
    certification_path: tuple[bytes, ...]
    """Certificates of the path to the root, DER bytes as carried (never re-encoded)."""
    execution_date_time: datetime | None = None
    """Aware UTC time of a future-dated command, :data:`CANCELLATION_DATE_TIME`, or ``None``."""

    @property
    def is_cancellation(self) -> bool:
        return self.execution_date_time == CANCELLATION_DATE_TIME

    @property
    def is_future_dated(self) -> bool:
        """A future-dated command proper (not a cancellation)."""
        return self.execution_date_time is not None and not self.is_cancellation


@dataclass(frozen=True, slots=True)
class ReplacementOutcome:
    """The per-cell result a meter reports; on failure replacing IDs equal the existing."""

    affected_trust_anchor_cell: TrustAnchorCellIdentifier
    status_code: StatusCode
    existing_subject_unique_id: Eui64
    existing_subject_key_id: bytes
    replacing_subject_unique_id: Eui64
    replacing_subject_key_id: bytes


@dataclass(frozen=True, slots=True)
class ExecutionOutcome:
    """What a meter did with a CS02b command, in a response or a 0x00CB alert."""

    authorising_remote_party_seq_number: int
    credentials_replacement_mode: CredentialsReplacementMode
    remote_party_seq_number_changes: tuple[RemotePartySeqNumberChange, ...]
    replacement_outcomes: tuple[ReplacementOutcome, ...]


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentialsResponse:
    """``SEQUENCE { commandAccepted NULL, executionOutcome OPTIONAL }``.

    The outcome is present for immediate commands; future-dated commands and
    cancellations are acknowledged with commandAccepted alone (§5.3).
    """

    execution_outcome: ExecutionOutcome | None = None

    @property
    def command_accepted(self) -> bool:
        """Always true: the NULL is mandatory; a rejected command gets no CS02b response."""
        return True


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentialsAlert:
    """The 0x00CB alert reporting a future-dated command's execution (§5.4)."""

    alert_code: AlertCode
    execution_date_time: datetime
    execution_outcome: ExecutionOutcome
