"""The values a simulated meter is made of and the values a transition returns.

Theory of operation. :class:`MeterState` is everything one meter remembers
between messages, as a frozen value: its EUI, its trust-anchor cells (shared
:class:`~openecos.device.cells.AnchorCertificate` objects in the order of
:data:`~openecos.device.cells.METER_CELLS`), its seq numbers (ints in the
order of :data:`~openecos.device.cells.SEQ_NUMBER_SLOTS`), the counter it
will put on its next alert, and at most one future-dated CS02b command
(:class:`PendingCommand`). What many meters share (device keys, accepted
certificate policies, the certificate cache, the response date-time) is one
:class:`MeterProfile`. :mod:`openecos.device.machine` maps a state and an
input to a :class:`Transition`: the next state, the messages to send
(:class:`MeterOutput`) and, when the input was discarded, a
:class:`Rejection` saying why. A real meter discards an unauthenticated
command silently; the rejection value exists so tests and the simulator's
owner can see the reason, and is never sent anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from openecos.device.cells import (
    CELL_SLOTS,
    SEQ_NUMBER_SLOTS,
    TOP_UP_SEQ_SLOT,
    AnchorCertificate,
    CertificateCache,
)
from openecos.device.keys import DeviceKeys
from openecos.eui import Eui64
from openecos.gbcs.codes import CredentialsReplacementMode, RemotePartyRole, StatusCode
from openecos.gbcs.cs02b import RemotePartySeqNumberChange, TrustAnchorCellIdentifier
from openecos.gbcs.frame import RTDS_RESPONSE_DATE_TIME


@dataclass(frozen=True, slots=True, eq=False)
class MeterProfile:
    """What a fleet of simulated meters shares (one object for all of them)."""

    keys: DeviceKeys
    policies: frozenset[str]
    """Certificate policy OIDs accepted on replacement certificates and their path."""
    certificates: CertificateCache = field(default_factory=CertificateCache)
    response_date_time: bytes = RTDS_RESPONSE_DATE_TIME
    """The DLMS date-time CS02b responses carry (§2.4): RTDS's fixed placeholder by default."""


@dataclass(frozen=True, slots=True)
class PlannedReplacement:
    """One replacement of a future-dated command, judged when the command was accepted."""

    cell: TrustAnchorCellIdentifier
    status: StatusCode
    certificate: AnchorCertificate | None
    """The replacement to install; ``None`` unless ``status`` is SUCCESS."""


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """The future-dated CS02b command a meter holds until its execution date-time."""

    originator: Eui64
    """Where the 0x00CB alert goes: the command's originator (§2.5)."""
    message_code: int
    mode: CredentialsReplacementMode
    seq_number: int
    execution_date_time: datetime
    replacements: tuple[PlannedReplacement, ...]
    seq_number_changes: tuple[RemotePartySeqNumberChange, ...]
    """The floors to apply on execution, as they will be reported in the outcome."""


@dataclass(frozen=True, slots=True)
class MeterState:
    """One meter's memory; see the module docstring. Build with ``commission_meter``."""

    device: Eui64
    cells: tuple[AnchorCertificate | None, ...]
    seq_numbers: tuple[int, ...]
    alert_counter: int = 1
    """The originator counter of the meter's next alert (the RTDS meter's was 2001)."""
    pending: PendingCommand | None = None

    def cell(self, cell: TrustAnchorCellIdentifier) -> AnchorCertificate | None:
        """What the cell holds; ``None`` if empty. Raises KeyError for a cell meters lack."""
        return self.cells[CELL_SLOTS[cell]]

    def seq_number(self, role: RemotePartyRole) -> int:
        """The stored seq number of a remote party (KeyError for a role without one)."""
        return self.seq_numbers[SEQ_NUMBER_SLOTS[role]]

    @property
    def top_up_seq_number(self) -> int:
        """The supplier's prepayment top-up specialist seq number."""
        return self.seq_numbers[TOP_UP_SEQ_SLOT]


class OutputKind(StrEnum):
    RESPONSE = "response"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class MeterOutput:
    """A message the meter sends: its bytes and where it goes."""

    kind: OutputKind
    recipient: Eui64
    originator_counter: int
    """For a response, the counter of the command it answers (§2.5)."""
    message: bytes


class RejectionReason(StrEnum):
    """Why a meter discarded an input without a response (see machine.py)."""

    MALFORMED = "not a decodable GBCS frame or payload"
    NOT_A_COMMAND = "CRA flag is not command"
    WRONG_RECIPIENT = "recipient is not this meter"
    UNSUPPORTED_MESSAGE_CODE = "message code this meter does not handle"
    UNSUPPORTED_MODE = "credentials replacement mode this meter does not handle"
    MESSAGE_CODE_MISMATCH = "message code does not match the credentials replacement mode"
    AUTHORISING_CELL_NOT_PERMITTED = "authorising cell is not the one the mode requires"
    NO_TRUST_ANCHOR = "the authorising or ACB cell is empty"
    MAC_MISSING = "command is not MACed"
    MAC_INVALID = "GMAC does not verify"
    SIGNATURE_INVALID = "signature absent or does not verify with the authorising anchor"
    SEQ_NUMBER_NOT_GREATER = "authorising seq number does not exceed the stored one"
    TARGET_NOT_PERMITTED = "a target cell the mode does not permit"
    DUPLICATE_TARGET = "two replacements for the same cell"
    NO_REPLACEMENTS = "no replacements"
    BROKEN = "the meter is broken"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectionReason
    detail: str = ""
    originator_counter: int | None = None
    """The discarded command's counter, when the frame could be read that far."""


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of one input: next state, messages to send, and why it was discarded."""

    state: MeterState
    outputs: tuple[MeterOutput, ...] = ()
    rejection: Rejection | None = None
