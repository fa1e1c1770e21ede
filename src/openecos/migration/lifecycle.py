"""EMEHRA: the per-meter migration lifecycle. One transition table, in this file only.

Theory of operation. A meter's migration state is a
:class:`~openecos.migration.record.MeterMigration` (status, reason, next
action and time, what is known of its transitionalCoS cell). Every change of
status is an :class:`Event` looked up in :data:`TRANSITIONS` by
:func:`next_status`, which raises
:class:`~openecos.migration.errors.IllegalTransition` for a pair not in the
table; nothing else decides a meter's next status (h11's rule). The
functions below are what the engine calls; each takes the record, what
happened, the time and the :class:`~openecos.migration.policy.EmehraPolicy`,
picks the event, and returns the new record. They never read a clock.

The path of a meter::

    Ineligible ◀──assessed──▶ Eligible ──command sent──▶ InFlight ──confirmed──▶ Migrated
                                 ▲                          │
                RetryWait ───────┴── command sent ◀─────────┤ failed, retryable
                   ▲                                        │ outcome lost (read first)
                   │ read shows TCoS                        ▼
           ReadingCredentials ◀──read sent── OutcomeUnknown ◀── read unanswered (reads left)
                   │ read shows ECoS ──▶ Migrated
                   └ budget spent / unexpected cell ──▶ Exception

- A definitive failure (the meter answered, and said no; or delivery failed)
  leaves the cell on TCoS: retry after the class's backoff, or go to
  Exception when the class's attempts (or ``max_total_attempts``) are spent.
- A failure whose class says ``read_credentials_first`` (no response, an
  answer that cannot be read or believed) makes the outcome unknown: the
  cell is read (CS02a) before anything else. The read decides: ECoS →
  migrated; TCoS → the failure was definitive after all (retry or exception);
  neither → exception; unanswered → read again, up to the read budget, then
  exception with the cell's content unknown.
- A late definitive answer to the 0x0106 still counts while the outcome is
  unknown or being read (matched by its counter; the engine checks that).
- When TCoS is retired (the enduring regime), a meter still on TCoS that is
  not being read is stranded: :func:`tcos_retired` raises it as an exception
  for recovery (its 6.23s are refused, :mod:`openecos.migration.routing`).
- Operators act on Exception and Held meters (:func:`operator_action`):
  retry now, hold, release, field visit, resolve manually (migrated, not
  migrated, ineligible). A retry or release of a meter whose cell is not
  known to be TCoS goes through a credentials read first.

The table, grouped (:data:`TRANSITIONS` is the authority; every pair is tested)::

    ineligible            assessed-eligible / -ineligible     eligible / ineligible
    eligible, retry-wait  assessed-ineligible                 ineligible
    eligible, retry-wait  command-sent                        in-flight
    in-flight, outcome-unknown, reading-credentials
                          migration-confirmed                 migrated
                          retry-scheduled                     retry-wait
                          escalated                           exception
    in-flight, reading-credentials
                          outcome-lost                        outcome-unknown
    outcome-unknown       read-sent                           reading-credentials
    ineligible, eligible, retry-wait
                          tcos-retired                        exception
    ineligible, eligible, retry-wait, outcome-unknown, exception, field-visit
                          held                                held
    held                  released / released-unverified      eligible / outcome-unknown
    exception             retry-now / retry-now-unverified    retry-wait / outcome-unknown
    exception, held       field-visit-requested               field-visit
    exception, held, field-visit
                          resolved-migrated                   migrated
                          resolved-not-migrated               eligible
                          resolved-ineligible                 ineligible

Everything that changes a meter's status is in this file; the record's own
invariants (reason, next action and time, credential knowledge per status)
are in :mod:`openecos.migration.record`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from openecos.eui import Eui64
from openecos.migration.eligibility import Eligibility, IneligibleReason
from openecos.migration.errors import IllegalTransition, InvalidMigrationInput
from openecos.migration.policy import EmehraPolicy, ErrorClass
from openecos.migration.record import (
    CredentialKnowledge,
    CredentialReading,
    MeterMigration,
    MigrationStatus,
    Reason,
    aware,
)

_U64_MAX = (1 << 64) - 1


class Event(StrEnum):
    """What can happen to a meter's migration."""

    ASSESSED_ELIGIBLE = "assessed-eligible"
    ASSESSED_INELIGIBLE = "assessed-ineligible"
    COMMAND_SENT = "command-sent"
    MIGRATION_CONFIRMED = "migration-confirmed"
    RETRY_SCHEDULED = "retry-scheduled"
    OUTCOME_LOST = "outcome-lost"
    READ_SENT = "read-sent"
    ESCALATED = "escalated"
    TCOS_RETIRED = "tcos-retired"
    HELD = "held"
    RELEASED = "released"
    RELEASED_UNVERIFIED = "released-unverified"
    RETRY_NOW = "retry-now"
    RETRY_NOW_UNVERIFIED = "retry-now-unverified"
    FIELD_VISIT_REQUESTED = "field-visit-requested"
    RESOLVED_MIGRATED = "resolved-migrated"
    RESOLVED_NOT_MIGRATED = "resolved-not-migrated"
    RESOLVED_INELIGIBLE = "resolved-ineligible"


_S, _E = MigrationStatus, Event
_ANSWER_PENDING = (_S.IN_FLIGHT, _S.OUTCOME_UNKNOWN, _S.READING_CREDENTIALS)
_OPERATOR_WAIT = (_S.EXCEPTION, _S.HELD, _S.FIELD_VISIT)


def _table() -> dict[tuple[MigrationStatus, Event], MigrationStatus]:
    table: dict[tuple[MigrationStatus, Event], MigrationStatus] = {
        (_S.INELIGIBLE, _E.ASSESSED_ELIGIBLE): _S.ELIGIBLE,
        (_S.INELIGIBLE, _E.ASSESSED_INELIGIBLE): _S.INELIGIBLE,
        (_S.ELIGIBLE, _E.ASSESSED_INELIGIBLE): _S.INELIGIBLE,
        (_S.RETRY_WAIT, _E.ASSESSED_INELIGIBLE): _S.INELIGIBLE,
        (_S.ELIGIBLE, _E.COMMAND_SENT): _S.IN_FLIGHT,
        (_S.RETRY_WAIT, _E.COMMAND_SENT): _S.IN_FLIGHT,
        (_S.IN_FLIGHT, _E.OUTCOME_LOST): _S.OUTCOME_UNKNOWN,
        (_S.READING_CREDENTIALS, _E.OUTCOME_LOST): _S.OUTCOME_UNKNOWN,
        (_S.OUTCOME_UNKNOWN, _E.READ_SENT): _S.READING_CREDENTIALS,
        (_S.HELD, _E.RELEASED): _S.ELIGIBLE,
        (_S.HELD, _E.RELEASED_UNVERIFIED): _S.OUTCOME_UNKNOWN,
        (_S.EXCEPTION, _E.RETRY_NOW): _S.RETRY_WAIT,
        (_S.EXCEPTION, _E.RETRY_NOW_UNVERIFIED): _S.OUTCOME_UNKNOWN,
        (_S.EXCEPTION, _E.FIELD_VISIT_REQUESTED): _S.FIELD_VISIT,
        (_S.HELD, _E.FIELD_VISIT_REQUESTED): _S.FIELD_VISIT,
    }
    for status in (_S.INELIGIBLE, _S.ELIGIBLE, _S.RETRY_WAIT):
        table[(status, _E.TCOS_RETIRED)] = _S.EXCEPTION
    for status in _ANSWER_PENDING:
        table[(status, _E.MIGRATION_CONFIRMED)] = _S.MIGRATED
        table[(status, _E.RETRY_SCHEDULED)] = _S.RETRY_WAIT
        table[(status, _E.ESCALATED)] = _S.EXCEPTION
    for status in (
        _S.INELIGIBLE,
        _S.ELIGIBLE,
        _S.RETRY_WAIT,
        _S.OUTCOME_UNKNOWN,
        _S.EXCEPTION,
        _S.FIELD_VISIT,
    ):
        table[(status, _E.HELD)] = _S.HELD
    for status in _OPERATOR_WAIT:
        table[(status, _E.RESOLVED_MIGRATED)] = _S.MIGRATED
        table[(status, _E.RESOLVED_NOT_MIGRATED)] = _S.ELIGIBLE
        table[(status, _E.RESOLVED_INELIGIBLE)] = _S.INELIGIBLE
    return table


#: (status, event) → next status. Every pair not listed is illegal; MIGRATED is final.
TRANSITIONS: MappingProxyType[tuple[MigrationStatus, Event], MigrationStatus] = MappingProxyType(
    _table()
)

FINAL_STATUSES = frozenset({_S.MIGRATED})


def next_status(status: MigrationStatus, event: Event) -> MigrationStatus:
    """The status after ``event``; raises :class:`IllegalTransition` if not allowed."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition("migration lifecycle", status.value, event.value) from None


def allowed_events(status: MigrationStatus) -> frozenset[Event]:
    return frozenset(e for (s, e) in TRANSITIONS if s is status)


def _move(record: MeterMigration, event: Event, at: datetime, **changes: object) -> MeterMigration:
    status = next_status(record.status, event)
    if status is not _S.INELIGIBLE:
        changes["ineligible"] = None
    return replace(record, status=status, since=at, **changes)  # type: ignore[arg-type]


def _counter(counter: int) -> int:
    if not isinstance(counter, int) or isinstance(counter, bool) or not 0 < counter <= _U64_MAX:
        raise InvalidMigrationInput(f"originator counter {counter!r} is not in 1..2^64-1")
    return counter


# -- eligibility -------------------------------------------------------------------------------


def new_record(
    device: Eui64, eligibility: Eligibility, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """The first record of a meter: eligible (due now) or ineligible (reassess later)."""
    at = aware("at", at)
    reason = eligibility.reason
    if reason is None:
        return MeterMigration(
            device, _S.ELIGIBLE, Reason.ASSESSED_ELIGIBLE, at, at, CredentialKnowledge.TCOS
        )
    return MeterMigration(
        device,
        _S.INELIGIBLE,
        Reason.ASSESSED_INELIGIBLE,
        at,
        at + policy.reassess_interval,
        _knowledge_for(reason),
        ineligible=reason,
    )


def _knowledge_for(reason: IneligibleReason) -> CredentialKnowledge:
    if reason in (IneligibleReason.BORN_ECOS, IneligibleReason.ALREADY_ECOS):
        return CredentialKnowledge.ECOS
    return CredentialKnowledge.TCOS


def reassess(
    record: MeterMigration, eligibility: Eligibility, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """Applies a fresh eligibility verdict to an ineligible, eligible or retry-waiting meter.

    An eligible verdict leaves an eligible or retry-waiting meter as it is.
    """
    at = aware("at", at)
    reason = eligibility.reason
    if reason is None:
        if record.status in (_S.ELIGIBLE, _S.RETRY_WAIT):
            return record
        return _move(
            record,
            _E.ASSESSED_ELIGIBLE,
            at,
            reason=Reason.ASSESSED_ELIGIBLE,
            next_at=at,
            credentials=CredentialKnowledge.TCOS,
            ineligible=None,
        )
    return _move(
        record,
        _E.ASSESSED_INELIGIBLE,
        at,
        reason=Reason.ASSESSED_INELIGIBLE,
        next_at=at + policy.reassess_interval,
        credentials=_knowledge_for(reason),
        ineligible=reason,
        error=None,
    )


# -- the 0x0106 command ------------------------------------------------------------------------


def command_sent(
    record: MeterMigration, *, counter: int, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """The 0x0106 with TCoS originator counter ``counter`` was sent at ``at``."""
    at = aware("at", at)
    return _move(
        record,
        _E.COMMAND_SENT,
        at,
        reason=Reason.COMMAND_SENT,
        next_at=at + policy.response_timeout,
        attempts=record.attempts + 1,
        total_attempts=record.total_attempts + 1,
        command_counter=_counter(counter),
        reads=0,
    )


def response_received(
    record: MeterMigration, error: ErrorClass | None, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """The 0x0106's answer, classified (``None``: success; see ``responses.classify_response``).

    In flight, any answer applies. While the outcome is unknown or being
    read, a late *definitive* answer applies; one that is not (its class says
    read first) changes nothing, and the read goes on.
    """
    at = aware("at", at)
    if error is None:
        return _move(
            record,
            _E.MIGRATION_CONFIRMED,
            at,
            reason=Reason.CONFIRMED_BY_RESPONSE,
            next_at=None,
            credentials=CredentialKnowledge.ECOS,
            error=None,
        )
    if policy.policy(error).read_credentials_first:
        if record.status is not _S.IN_FLIGHT:
            if record.status not in _ANSWER_PENDING:
                raise IllegalTransition("migration lifecycle", record.status.value, "response")
            return record  # not definitive: the credentials read decides
        return _move(
            record,
            _E.OUTCOME_LOST,
            at,
            reason=Reason.OUTCOME_UNKNOWN,
            next_at=at + policy.read_delay,
            credentials=CredentialKnowledge.UNKNOWN,
            error=error,
            reads=0,
        )
    return _definitive_failure(record, error, at, policy)


def response_timed_out(
    record: MeterMigration, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """No answer to the 0x0106 by its deadline."""
    if record.status is not _S.IN_FLIGHT:
        raise IllegalTransition("migration lifecycle", record.status.value, "response-timed-out")
    return response_received(record, ErrorClass.NO_RESPONSE, at, policy)


def _definitive_failure(
    record: MeterMigration, error: ErrorClass, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """The cell is known to hold TCoS still: retry after the backoff, or escalate."""
    retry = policy.policy(error)
    if retry.max_attempts == 1:
        reason = Reason.NOT_RETRYABLE
    elif (
        record.attempts >= retry.max_attempts or record.total_attempts >= policy.max_total_attempts
    ):
        reason = Reason.RETRY_BUDGET_SPENT
    else:
        delay = retry.delay(max(record.attempts, 1), seed=policy.seed, device=record.device)
        return _move(
            record,
            _E.RETRY_SCHEDULED,
            at,
            reason=Reason.FAILED_RETRYABLE,
            next_at=at + delay,
            credentials=CredentialKnowledge.TCOS,
            error=error,
        )
    return _move(
        record,
        _E.ESCALATED,
        at,
        reason=reason,
        next_at=at + policy.review_interval,
        credentials=CredentialKnowledge.TCOS,
        error=error,
    )


def tcos_retired(record: MeterMigration, at: datetime, policy: EmehraPolicy) -> MeterMigration:
    """TCoS was retired: a meter left on TCoS becomes an exception for recovery.

    A meter known to be on ECoS (born ECoS, or already migrated) is not
    stranded and is returned unchanged; one with a command or read out is
    refused (IllegalTransition): let the answer or its deadline come first.
    """
    at = aware("at", at)
    if record.credentials is CredentialKnowledge.ECOS:
        return record
    return _move(
        record,
        _E.TCOS_RETIRED,
        at,
        reason=Reason.TCOS_RETIRED,
        next_at=at + policy.review_interval,
    )


# -- the credentials read (CS02a) ----------------------------------------------------------------


def read_sent(
    record: MeterMigration, *, counter: int, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """The CS02a read of the transitionalCoS cell, with originator counter ``counter``, was sent."""
    at = aware("at", at)
    return _move(
        record,
        _E.READ_SENT,
        at,
        reason=Reason.READ_SENT,
        next_at=at + policy.response_timeout,
        reads=record.reads + 1,
        read_counter=_counter(counter),
    )


def credentials_read(
    record: MeterMigration, reading: CredentialReading, at: datetime, policy: EmehraPolicy
) -> MeterMigration:
    """What the read found (see ``credentials.interpret_credentials``), and what follows."""
    at = aware("at", at)
    if record.status is not _S.READING_CREDENTIALS:
        raise IllegalTransition("migration lifecycle", record.status.value, "credentials-read")
    if reading is CredentialReading.ECOS:
        return _move(
            record,
            _E.MIGRATION_CONFIRMED,
            at,
            reason=Reason.CONFIRMED_BY_READ,
            next_at=None,
            credentials=CredentialKnowledge.ECOS,
            error=None,
        )
    if reading is CredentialReading.TCOS:
        # The 0x0106 did not take effect: its failure was definitive after all.
        assert record.error is not None  # an unknown outcome always names its cause
        return _definitive_failure(record, record.error, at, policy)
    if reading in (CredentialReading.OTHER, CredentialReading.EMPTY):
        error = (
            ErrorClass.UNEXPECTED_CREDENTIALS
            if reading is CredentialReading.OTHER
            else ErrorClass.TRUST_ANCHOR_NOT_FOUND
        )
        knowledge = CredentialKnowledge.OTHER
        return _move(
            record,
            _E.ESCALATED,
            at,
            reason=Reason.NOT_RETRYABLE,
            next_at=at + policy.review_interval,
            credentials=knowledge,
            error=error,
        )
    return _read_failed(record, at, policy)


def read_timed_out(record: MeterMigration, at: datetime, policy: EmehraPolicy) -> MeterMigration:
    """No answer to the CS02a read by its deadline."""
    at = aware("at", at)
    if record.status is not _S.READING_CREDENTIALS:
        raise IllegalTransition("migration lifecycle", record.status.value, "read-timed-out")
    return _read_failed(record, at, policy)


def _read_failed(record: MeterMigration, at: datetime, policy: EmehraPolicy) -> MeterMigration:
    read_policy = policy.read_policy
    if record.reads >= read_policy.max_attempts:
        return _move(
            record,
            _E.ESCALATED,
            at,
            reason=Reason.READ_BUDGET_SPENT,
            next_at=at + policy.review_interval,
        )
    delay = read_policy.delay(record.reads, seed=policy.seed, device=record.device)
    return _move(record, _E.OUTCOME_LOST, at, reason=Reason.READ_FAILED, next_at=at + delay)


# -- operator actions on the exceptions queue ----------------------------------------------------


class OperatorAction(StrEnum):
    RETRY_NOW = "retry now"
    HOLD = "hold"
    RELEASE_HOLD = "release hold"
    FIELD_VISIT = "mark for field visit"
    RESOLVE_MIGRATED = "resolve manually: the meter holds the ECoS certificate"
    RESOLVE_NOT_MIGRATED = "resolve manually: the meter holds the TCoS certificate"
    RESOLVE_INELIGIBLE = "resolve manually: the meter is not to be migrated"


def operator_action(
    record: MeterMigration,
    action: OperatorAction,
    *,
    actor: str,
    note: str,
    at: datetime,
    policy: EmehraPolicy,
    ineligible: IneligibleReason | None = None,
) -> MeterMigration:
    """An operator's decision, recorded with who and why.

    ``RETRY_NOW`` and ``RESOLVE_NOT_MIGRATED`` give the meter a fresh retry
    budget. ``RETRY_NOW`` and ``RELEASE_HOLD`` of a meter whose cell is not
    known to hold TCoS go to a credentials read first.
    ``RESOLVE_INELIGIBLE`` needs ``ineligible``.
    """
    at = aware("at", at)
    if not actor.strip() or not note.strip():
        raise InvalidMigrationInput("an operator action names its actor and says why")
    audit: dict[str, object] = {"actor": actor, "note": note}
    review = at + policy.review_interval
    verified = record.credentials is CredentialKnowledge.TCOS
    if action is OperatorAction.HOLD:
        return _move(record, _E.HELD, at, reason=Reason.HELD_BY_OPERATOR, next_at=review, **audit)
    if action is OperatorAction.FIELD_VISIT:
        return _move(
            record,
            _E.FIELD_VISIT_REQUESTED,
            at,
            reason=Reason.FIELD_VISIT_REQUESTED,
            next_at=review,
            **audit,
        )
    if action in (OperatorAction.RETRY_NOW, OperatorAction.RELEASE_HOLD):
        retry = action is OperatorAction.RETRY_NOW
        budget = {"attempts": 0} if retry else {}
        reason = Reason.RETRY_REQUESTED if retry else Reason.RELEASED
        if verified:
            event = _E.RETRY_NOW if retry else _E.RELEASED
            return _move(record, event, at, reason=reason, next_at=at, **budget, **audit)
        event = _E.RETRY_NOW_UNVERIFIED if retry else _E.RELEASED_UNVERIFIED
        return _move(
            record,
            event,
            at,
            reason=reason,
            next_at=at,
            credentials=CredentialKnowledge.UNKNOWN,
            error=record.error or ErrorClass.NO_RESPONSE,
            reads=0,
            **budget,
            **audit,
        )
    if action is OperatorAction.RESOLVE_MIGRATED:
        return _move(
            record,
            _E.RESOLVED_MIGRATED,
            at,
            reason=Reason.RESOLVED_BY_OPERATOR,
            next_at=None,
            credentials=CredentialKnowledge.ECOS,
            **audit,
        )
    if action is OperatorAction.RESOLVE_NOT_MIGRATED:
        return _move(
            record,
            _E.RESOLVED_NOT_MIGRATED,
            at,
            reason=Reason.RESOLVED_BY_OPERATOR,
            next_at=at,
            credentials=CredentialKnowledge.TCOS,
            attempts=0,
            error=None,
            **audit,
        )
    if ineligible is None:
        raise InvalidMigrationInput("resolving a meter as ineligible names the reason")
    return _move(
        record,
        _E.RESOLVED_INELIGIBLE,
        at,
        reason=Reason.RESOLVED_BY_OPERATOR,
        next_at=at + policy.reassess_interval,
        credentials=_knowledge_for(ineligible),
        ineligible=ineligible,
        **audit,
    )
