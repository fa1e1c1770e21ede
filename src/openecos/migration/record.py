"""The per-meter migration record: where a meter is, why, and what happens next.

Theory of operation. A :class:`MeterMigration` is one meter's EMEHRA state as
a frozen value the engine stores (one row per meter) and
:mod:`openecos.migration.lifecycle` moves. The invariant "no meter is ever in
an unknown state without a named reason and a next step" is structural: the
record refuses to exist otherwise (``__post_init__`` raises
:class:`~openecos.migration.errors.InvalidMigrationInput`):

- every status has exactly one :class:`NextAction` (:data:`NEXT_ACTIONS`) and,
  except MIGRATED, a ``next_at`` time: when to start, when a wait times out,
  when to read the credentials, when to reassess, or when an operator must
  review a meter waiting for one;
- every record names a :class:`Reason`, and the reason must be one that
  status allows (:data:`REASONS`); reasons that follow a failure also name the
  :class:`~openecos.migration.policy.ErrorClass`;
- ``credentials`` says what the DCC knows the transitionalCoS cell holds
  (:class:`CredentialKnowledge`), and must be consistent with the status
  (:data:`CREDENTIALS`): a command is only ever started from a status whose
  knowledge is TCOS, so a meter whose outcome is unknown is read first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from openecos.eui import Eui64
from openecos.migration.eligibility import IneligibleReason
from openecos.migration.errors import InvalidMigrationInput
from openecos.migration.policy import ErrorClass


class MigrationStatus(StrEnum):
    """Where a meter is in its migration (EMEHRA)."""

    INELIGIBLE = "ineligible"
    ELIGIBLE = "eligible"
    IN_FLIGHT = "in-flight"
    OUTCOME_UNKNOWN = "outcome-unknown"
    READING_CREDENTIALS = "reading-credentials"
    RETRY_WAIT = "retry-wait"
    MIGRATED = "migrated"
    EXCEPTION = "exception"
    HELD = "held"
    FIELD_VISIT = "field-visit"


class NextAction(StrEnum):
    """What happens next to a meter, at its ``next_at``."""

    REASSESS = "assess eligibility again"
    START = "send the 0x0106 command (capacity permitting)"
    AWAIT_RESPONSE = "wait for the 0x0106 response; no response by next_at"
    READ_CREDENTIALS = "send a CS02a read of the transitionalCoS cell"
    AWAIT_CREDENTIALS = "wait for the CS02a response; no response by next_at"
    OPERATOR_REVIEW = "an operator decides: retry, hold, field visit or resolve"
    FIELD_VISIT = "an engineer visits the meter; then resolve manually"
    NONE = "nothing: the meter is migrated"


class CredentialKnowledge(StrEnum):
    """What the DCC knows the meter's transitionalCoS DS cell holds."""

    TCOS = "TCoS certificate"
    ECOS = "ECoS certificate"
    OTHER = "a certificate of neither party"
    UNKNOWN = "unknown (a command's outcome was not confirmed)"


class CredentialReading(StrEnum):
    """What a CS02a read of the transitionalCoS cell found (``credentials.py`` decides)."""

    TCOS = "the TCoS certificate"
    ECOS = "the ECoS certificate"
    OTHER = "a certificate of neither party"
    EMPTY = "no transitionalCoS anchor (trustAnchorNotFound)"
    UNREADABLE = "a response that cannot be read or believed"


class Reason(StrEnum):
    """Why a meter is in its status."""

    ASSESSED_ELIGIBLE = "eligible; waiting for capacity"
    ASSESSED_INELIGIBLE = "not eligible (see the ineligible reason)"
    COMMAND_SENT = "0x0106 sent"
    CONFIRMED_BY_RESPONSE = "the meter's response confirms the ECoS certificate"
    CONFIRMED_BY_READ = "a credentials read shows the ECoS certificate"
    RESOLVED_BY_OPERATOR = "resolved manually by an operator"
    FAILED_RETRYABLE = "the attempt failed (see the error); retry at next_at"
    OUTCOME_UNKNOWN = "outcome not known (see the error); read the credentials"
    READ_FAILED = "a credentials read was not answered or not readable; read again"
    READ_SENT = "CS02a credentials read sent"
    RETRY_BUDGET_SPENT = "the retry budget for the error is spent"
    NOT_RETRYABLE = "the error is not retried automatically"
    READ_BUDGET_SPENT = "the credentials-read budget is spent; the cell's content is unknown"
    TCOS_RETIRED = "TCoS is retired and the meter is still on TCoS: recovery needed"
    HELD_BY_OPERATOR = "held by an operator"
    FIELD_VISIT_REQUESTED = "an operator asked for a field visit"
    RETRY_REQUESTED = "an operator asked for a retry"
    RELEASED = "an operator released the hold"


_S, _R, _C = MigrationStatus, Reason, CredentialKnowledge

#: The one next action of each status.
NEXT_ACTIONS: MappingProxyType[MigrationStatus, NextAction] = MappingProxyType(
    {
        _S.INELIGIBLE: NextAction.REASSESS,
        _S.ELIGIBLE: NextAction.START,
        _S.IN_FLIGHT: NextAction.AWAIT_RESPONSE,
        _S.OUTCOME_UNKNOWN: NextAction.READ_CREDENTIALS,
        _S.READING_CREDENTIALS: NextAction.AWAIT_CREDENTIALS,
        _S.RETRY_WAIT: NextAction.START,
        _S.MIGRATED: NextAction.NONE,
        _S.EXCEPTION: NextAction.OPERATOR_REVIEW,
        _S.HELD: NextAction.OPERATOR_REVIEW,
        _S.FIELD_VISIT: NextAction.FIELD_VISIT,
    }
)

#: The reasons each status allows.
REASONS: MappingProxyType[MigrationStatus, frozenset[Reason]] = MappingProxyType(
    {
        _S.INELIGIBLE: frozenset({_R.ASSESSED_INELIGIBLE, _R.RESOLVED_BY_OPERATOR}),
        _S.ELIGIBLE: frozenset({_R.ASSESSED_ELIGIBLE, _R.RELEASED, _R.RESOLVED_BY_OPERATOR}),
        _S.IN_FLIGHT: frozenset({_R.COMMAND_SENT}),
        _S.OUTCOME_UNKNOWN: frozenset(
            {_R.OUTCOME_UNKNOWN, _R.READ_FAILED, _R.RELEASED, _R.RETRY_REQUESTED}
        ),
        _S.READING_CREDENTIALS: frozenset({_R.READ_SENT}),
        _S.RETRY_WAIT: frozenset({_R.FAILED_RETRYABLE, _R.RETRY_REQUESTED}),
        _S.MIGRATED: frozenset(
            {_R.CONFIRMED_BY_RESPONSE, _R.CONFIRMED_BY_READ, _R.RESOLVED_BY_OPERATOR}
        ),
        _S.EXCEPTION: frozenset(
            {_R.RETRY_BUDGET_SPENT, _R.NOT_RETRYABLE, _R.READ_BUDGET_SPENT, _R.TCOS_RETIRED}
        ),
        _S.HELD: frozenset({_R.HELD_BY_OPERATOR}),
        _S.FIELD_VISIT: frozenset({_R.FIELD_VISIT_REQUESTED}),
    }
)

_ANY = frozenset(CredentialKnowledge)

#: What the DCC may know of the cell in each status (a command starts only from TCOS).
CREDENTIALS: MappingProxyType[MigrationStatus, frozenset[CredentialKnowledge]] = MappingProxyType(
    {
        _S.INELIGIBLE: _ANY,
        _S.ELIGIBLE: frozenset({_C.TCOS}),
        _S.IN_FLIGHT: frozenset({_C.TCOS}),
        _S.OUTCOME_UNKNOWN: frozenset({_C.UNKNOWN}),
        _S.READING_CREDENTIALS: frozenset({_C.UNKNOWN}),
        _S.RETRY_WAIT: frozenset({_C.TCOS}),
        _S.MIGRATED: frozenset({_C.ECOS}),
        _S.EXCEPTION: _ANY,
        _S.HELD: _ANY,
        _S.FIELD_VISIT: _ANY,
    }
)

#: Reasons that follow a failure and therefore name its error class.
REASONS_WITH_ERROR = frozenset(
    {
        _R.FAILED_RETRYABLE,
        _R.OUTCOME_UNKNOWN,
        _R.READ_FAILED,
        _R.RETRY_BUDGET_SPENT,
        _R.NOT_RETRYABLE,
        _R.READ_BUDGET_SPENT,
    }
)


def aware(name: str, value: object) -> datetime:
    """``value`` as UTC; naive datetimes and non-datetimes are refused."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidMigrationInput(f"{name} must be an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidMigrationInput(f"{name} must be an int >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class MeterMigration:
    """One meter's migration state (see the module docstring for its invariants)."""

    device: Eui64
    status: MigrationStatus
    reason: Reason
    since: datetime
    """When the meter entered this status."""
    next_at: datetime | None
    """When :attr:`next_action` is due; ``None`` only when migrated."""
    credentials: CredentialKnowledge
    attempts: int = 0
    """0x0106 commands sent within the current retry budget (an operator retry resets it)."""
    total_attempts: int = 0
    """0x0106 commands ever sent to this meter."""
    reads: int = 0
    """Credentials reads sent within the current unknown outcome."""
    error: ErrorClass | None = None
    """The latest failure's class (for an unknown outcome, what made it unknown)."""
    ineligible: IneligibleReason | None = None
    command_counter: int | None = None
    """The TCoS originator counter of the latest 0x0106 (a response echoes it)."""
    read_counter: int | None = None
    """The originator counter of the latest CS02a read."""
    actor: str | None = None
    """The operator of the latest operator action."""
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.device, Eui64):
            raise InvalidMigrationInput("device must be an Eui64")
        status = MigrationStatus(self.status)
        object.__setattr__(self, "since", aware("since", self.since))
        if self.next_at is not None:
            object.__setattr__(self, "next_at", aware("next_at", self.next_at))
        if (self.next_at is None) != (status is MigrationStatus.MIGRATED):
            raise InvalidMigrationInput(f"{status.value}: next_at is required unless migrated")
        if self.reason not in REASONS[status]:
            raise InvalidMigrationInput(f"{status.value} cannot have reason {self.reason.name}")
        if self.credentials not in CREDENTIALS[status]:
            raise InvalidMigrationInput(
                f"{status.value} cannot have credentials {self.credentials.name}"
            )
        if self.reason in REASONS_WITH_ERROR and self.error is None:
            raise InvalidMigrationInput(f"reason {self.reason.name} names an error class")
        if (self.ineligible is not None) != (status is MigrationStatus.INELIGIBLE):
            raise InvalidMigrationInput("an ineligible reason is given iff the meter is ineligible")
        for name in ("attempts", "total_attempts", "reads"):
            _count(name, getattr(self, name))
        if self.attempts > self.total_attempts:
            raise InvalidMigrationInput("attempts cannot exceed total_attempts")
        if status is MigrationStatus.IN_FLIGHT and self.command_counter is None:
            raise InvalidMigrationInput("a meter in flight names its command's counter")
        if status is MigrationStatus.READING_CREDENTIALS and self.read_counter is None:
            raise InvalidMigrationInput("a meter being read names its read's counter")

    @property
    def next_action(self) -> NextAction:
        return NEXT_ACTIONS[self.status]

    def due(self, now: datetime) -> bool:
        """Whether :attr:`next_action` is due at ``now``."""
        return self.next_at is not None and self.next_at <= aware("now", now)
