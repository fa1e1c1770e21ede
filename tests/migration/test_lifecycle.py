"""EMEHRA lifecycle: every transition of the table, illegal ones, and the structural invariant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.migration import (
    ELIGIBLE,
    TRANSITIONS,
    CredentialKnowledge,
    CredentialReading,
    Eligibility,
    EmehraPolicy,
    ErrorClass,
    Event,
    IllegalTransition,
    IneligibleReason,
    InvalidMigrationInput,
    MeterMigration,
    MigrationError,
    MigrationStatus,
    NextAction,
    OperatorAction,
    Reason,
    allowed_events,
    command_sent,
    credentials_read,
    new_record,
    next_status,
    operator_action,
    read_sent,
    read_timed_out,
    reassess,
    response_received,
    response_timed_out,
    tcos_retired,
)
from openecos.migration.record import CREDENTIALS, NEXT_ACTIONS, REASONS

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)
DEVICE = Eui64.parse("00DB000000000001")
POLICY = EmehraPolicy(seed=3)
S = MigrationStatus
K = CredentialKnowledge
NOT_APPROVED = Eligibility((IneligibleReason.MODEL_NOT_APPROVED,))


def record(
    status: MigrationStatus, credentials: CredentialKnowledge | None = None
) -> MeterMigration:
    """A valid record in ``status`` (credentials as given, else the first the status allows)."""
    reason = sorted(REASONS[status])[0]
    knowledge = credentials or sorted(CREDENTIALS[status])[0]
    return MeterMigration(
        DEVICE,
        status,
        reason,
        T0,
        None if status is S.MIGRATED else T0,
        knowledge,
        attempts=1,
        total_attempts=1,
        reads=1,
        error=ErrorClass.NO_RESPONSE,
        ineligible=IneligibleReason.MODEL_NOT_APPROVED if status is S.INELIGIBLE else None,
        command_counter=10,
        read_counter=20,
    )


def _op(action: OperatorAction) -> Callable[[MeterMigration], MeterMigration]:
    def act(r: MeterMigration) -> MeterMigration:
        return operator_action(
            r,
            action,
            actor="operator-1",
            note="ticket 42",
            at=LATER,
            policy=POLICY,
            ineligible=IneligibleReason.NOT_COMMISSIONED,
        )

    return act


def _answer(
    error: ErrorClass | None, reading: CredentialReading
) -> Callable[[MeterMigration], MeterMigration]:
    def act(r: MeterMigration) -> MeterMigration:
        if r.status is S.READING_CREDENTIALS:
            return credentials_read(r, reading, LATER, POLICY)
        return response_received(r, error, LATER, POLICY)

    return act


def _lost(r: MeterMigration) -> MeterMigration:
    if r.status is S.READING_CREDENTIALS:
        return read_timed_out(r, LATER, POLICY)
    return response_timed_out(r, LATER, POLICY)


#: How the public API produces each event (and with which credential knowledge to start).
DRIVERS: dict[
    Event, tuple[Callable[[MeterMigration], MeterMigration], CredentialKnowledge | None]
] = {
    Event.ASSESSED_ELIGIBLE: (lambda r: reassess(r, ELIGIBLE, LATER, POLICY), None),
    Event.ASSESSED_INELIGIBLE: (lambda r: reassess(r, NOT_APPROVED, LATER, POLICY), None),
    Event.COMMAND_SENT: (lambda r: command_sent(r, counter=11, at=LATER, policy=POLICY), None),
    Event.MIGRATION_CONFIRMED: (_answer(None, CredentialReading.ECOS), None),
    Event.RETRY_SCHEDULED: (_answer(ErrorClass.METER_BUSY, CredentialReading.TCOS), None),
    Event.OUTCOME_LOST: (_lost, None),
    Event.READ_SENT: (lambda r: read_sent(r, counter=21, at=LATER, policy=POLICY), None),
    Event.ESCALATED: (_answer(ErrorClass.BAD_CERTIFICATE, CredentialReading.OTHER), None),
    Event.TCOS_RETIRED: (lambda r: tcos_retired(r, LATER, POLICY), K.TCOS),
    Event.HELD: (_op(OperatorAction.HOLD), None),
    Event.RELEASED: (_op(OperatorAction.RELEASE_HOLD), K.TCOS),
    Event.RELEASED_UNVERIFIED: (_op(OperatorAction.RELEASE_HOLD), K.UNKNOWN),
    Event.RETRY_NOW: (_op(OperatorAction.RETRY_NOW), K.TCOS),
    Event.RETRY_NOW_UNVERIFIED: (_op(OperatorAction.RETRY_NOW), K.UNKNOWN),
    Event.FIELD_VISIT_REQUESTED: (_op(OperatorAction.FIELD_VISIT), None),
    Event.RESOLVED_MIGRATED: (_op(OperatorAction.RESOLVE_MIGRATED), None),
    Event.RESOLVED_NOT_MIGRATED: (_op(OperatorAction.RESOLVE_NOT_MIGRATED), None),
    Event.RESOLVED_INELIGIBLE: (_op(OperatorAction.RESOLVE_INELIGIBLE), None),
}


def test_every_event_has_a_driver() -> None:
    assert set(DRIVERS) == set(Event)


@pytest.mark.parametrize(("transition", "target"), sorted(TRANSITIONS.items()))
def test_every_transition_through_the_public_api(
    transition: tuple[MigrationStatus, Event], target: MigrationStatus
) -> None:
    status, event = transition
    assert next_status(status, event) is target
    drive, knowledge = DRIVERS[event]
    if status is S.IN_FLIGHT and event is Event.OUTCOME_LOST:
        knowledge = None
    before = record(status, knowledge)
    after = drive(before)
    assert after.status is target
    assert after.since == LATER or after is before


ILLEGAL = [(s, e) for s in MigrationStatus for e in Event if (s, e) not in TRANSITIONS]


@pytest.mark.parametrize(("status", "event"), ILLEGAL)
def test_events_not_in_the_table_raise(status: MigrationStatus, event: Event) -> None:
    with pytest.raises(IllegalTransition):
        next_status(status, event)


@pytest.mark.parametrize(("status", "event"), ILLEGAL)
def test_the_public_api_refuses_what_the_table_refuses(
    status: MigrationStatus, event: Event
) -> None:
    drive, knowledge = DRIVERS[event]
    allowed = CREDENTIALS[status]
    before = record(status, knowledge if knowledge in allowed else None)
    try:
        after = drive(before)
    except MigrationError:
        return
    # The driver chose another legal event (an eligible verdict leaves a ready meter alone,
    # an unverified release is a release...): the table still decided.
    assert (before.status, after.status) in {(s, t) for (s, _), t in TRANSITIONS.items()} or (
        after is before
    )


def test_migrated_is_final() -> None:
    assert allowed_events(S.MIGRATED) == frozenset()


def test_happy_path() -> None:
    r = new_record(DEVICE, ELIGIBLE, T0, POLICY)
    assert (r.status, r.next_action, r.next_at) == (S.ELIGIBLE, NextAction.START, T0)
    r = command_sent(r, counter=6000, at=T0, policy=POLICY)
    assert r.next_action is NextAction.AWAIT_RESPONSE
    assert r.next_at == T0 + POLICY.response_timeout
    r = response_received(r, None, LATER, POLICY)
    assert (r.status, r.reason, r.credentials, r.next_at) == (
        S.MIGRATED,
        Reason.CONFIRMED_BY_RESPONSE,
        K.ECOS,
        None,
    )


def test_unknown_outcome_is_read_then_resolved_as_migrated() -> None:
    r = command_sent(new_record(DEVICE, ELIGIBLE, T0, POLICY), counter=6000, at=T0, policy=POLICY)
    r = response_timed_out(r, LATER, POLICY)
    assert (r.status, r.error, r.next_action) == (
        S.OUTCOME_UNKNOWN,
        ErrorClass.NO_RESPONSE,
        NextAction.READ_CREDENTIALS,
    )
    r = read_sent(r, counter=1300, at=LATER, policy=POLICY)
    r = credentials_read(r, CredentialReading.ECOS, LATER, POLICY)
    assert (r.status, r.reason) == (S.MIGRATED, Reason.CONFIRMED_BY_READ)


def test_unanswered_reads_go_to_exception_with_the_state_unknown() -> None:
    r = command_sent(new_record(DEVICE, ELIGIBLE, T0, POLICY), counter=6000, at=T0, policy=POLICY)
    r = response_timed_out(r, LATER, POLICY)
    for n in range(POLICY.read_policy.max_attempts):
        assert r.status is S.OUTCOME_UNKNOWN
        r = read_sent(r, counter=1300 + n, at=LATER, policy=POLICY)
        r = read_timed_out(r, LATER, POLICY)
    assert (r.status, r.reason, r.credentials) == (S.EXCEPTION, Reason.READ_BUDGET_SPENT, K.UNKNOWN)
    # An operator's retry of such a meter reads the cell first, never sends blindly.
    r = _op(OperatorAction.RETRY_NOW)(r)
    assert (r.status, r.next_action) == (S.OUTCOME_UNKNOWN, NextAction.READ_CREDENTIALS)


def test_a_late_answer_while_reading_counts_if_definitive() -> None:
    r = record(S.READING_CREDENTIALS)
    assert response_received(r, ErrorClass.MALFORMED_RESPONSE, LATER, POLICY) is r
    assert response_received(r, None, LATER, POLICY).status is S.MIGRATED
    assert response_received(r, ErrorClass.METER_BUSY, LATER, POLICY).status is S.RETRY_WAIT


def test_an_empty_cell_is_an_exception() -> None:
    r = credentials_read(record(S.READING_CREDENTIALS), CredentialReading.EMPTY, LATER, POLICY)
    assert (r.status, r.error) == (S.EXCEPTION, ErrorClass.TRUST_ANCHOR_NOT_FOUND)


def test_unreadable_read_is_read_again() -> None:
    r = credentials_read(record(S.READING_CREDENTIALS), CredentialReading.UNREADABLE, LATER, POLICY)
    assert (r.status, r.reason) == (S.OUTCOME_UNKNOWN, Reason.READ_FAILED)


def test_operator_retry_resets_the_budget_and_records_who_and_why() -> None:
    r = record(S.EXCEPTION, K.TCOS)
    after = _op(OperatorAction.RETRY_NOW)(r)
    assert (after.status, after.attempts, after.total_attempts) == (S.RETRY_WAIT, 0, 1)
    assert (after.actor, after.note, after.next_at) == ("operator-1", "ticket 42", LATER)


def test_operator_action_needs_actor_note_and_reason() -> None:
    with pytest.raises(InvalidMigrationInput):
        operator_action(
            record(S.EXCEPTION), OperatorAction.HOLD, actor=" ", note="x", at=LATER, policy=POLICY
        )
    with pytest.raises(InvalidMigrationInput):
        operator_action(
            record(S.EXCEPTION),
            OperatorAction.RESOLVE_INELIGIBLE,
            actor="op",
            note="meter exchanged",
            at=LATER,
            policy=POLICY,
        )


def test_an_operator_cannot_hold_a_meter_with_a_command_out() -> None:
    for status in (S.IN_FLIGHT, S.READING_CREDENTIALS):
        with pytest.raises(IllegalTransition):
            _op(OperatorAction.HOLD)(record(status))


@pytest.mark.parametrize(
    "changes",
    [
        {"next_at": None},  # an unknown state without a next time
        {"reason": Reason.ASSESSED_ELIGIBLE},  # a reason the status does not allow
        {"credentials": K.TCOS},  # a command started from an unknown cell
        {"error": None},  # a failure that names no error class
        {"ineligible": IneligibleReason.DEVICE_TYPE},
        {"since": datetime(2024, 1, 1)},  # naive
    ],
)
def test_a_record_without_reason_and_next_step_cannot_exist(changes: dict[str, object]) -> None:
    fields = {
        "device": DEVICE,
        "status": S.OUTCOME_UNKNOWN,
        "reason": Reason.OUTCOME_UNKNOWN,
        "since": T0,
        "next_at": T0,
        "credentials": K.UNKNOWN,
        "error": ErrorClass.NO_RESPONSE,
    }
    MeterMigration(**fields)  # type: ignore[arg-type]
    with pytest.raises(InvalidMigrationInput):
        MeterMigration(**(fields | changes))  # type: ignore[arg-type]


def test_every_status_has_a_next_action() -> None:
    assert set(NEXT_ACTIONS) == set(MigrationStatus) == set(REASONS) == set(CREDENTIALS)


def _respond(error: ErrorClass | None, r: MeterMigration, t: datetime) -> MeterMigration:
    return response_received(r, error, t, POLICY)


def _read(reading: CredentialReading, r: MeterMigration, t: datetime) -> MeterMigration:
    return credentials_read(r, reading, t, POLICY)


def _operate(action: OperatorAction, r: MeterMigration, t: datetime) -> MeterMigration:
    return operator_action(
        r,
        action,
        actor="op",
        note="n",
        at=t,
        policy=POLICY,
        ineligible=IneligibleReason.NOT_COMMISSIONED,
    )


STEPS = st.sampled_from(
    [
        lambda r, t: reassess(r, ELIGIBLE, t, POLICY),
        lambda r, t: reassess(r, NOT_APPROVED, t, POLICY),
        lambda r, t: command_sent(r, counter=r.total_attempts + 1, at=t, policy=POLICY),
        partial(_respond, None),
        *[partial(_respond, e) for e in ErrorClass],
        lambda r, t: response_timed_out(r, t, POLICY),
        lambda r, t: read_sent(r, counter=r.reads + 100, at=t, policy=POLICY),
        *[partial(_read, c) for c in CredentialReading],
        lambda r, t: read_timed_out(r, t, POLICY),
        lambda r, t: tcos_retired(r, t, POLICY),
        *[partial(_operate, a) for a in OperatorAction],
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(STEPS, st.integers(min_value=0, max_value=3600)), max_size=40))
def test_any_sequence_keeps_every_meter_named_and_scheduled(
    steps: list[tuple[Callable[[MeterMigration, datetime], MeterMigration], int]],
) -> None:
    r = new_record(DEVICE, ELIGIBLE, T0, POLICY)
    t = T0
    for step, seconds in steps:
        t += timedelta(seconds=seconds)
        try:
            after = step(r, t)
        except MigrationError:
            continue
        assert after.reason in REASONS[after.status]
        assert (after.next_at is None) == (after.status is S.MIGRATED)
        if after.credentials is K.UNKNOWN:
            assert after.next_action is not NextAction.START
        if after.status is not r.status:
            assert (r.status, after.status) in {(s, n) for (s, _), n in TRANSITIONS.items()}
        if r.status is S.MIGRATED:
            assert after is r or after.status is S.MIGRATED
        r = after


def test_a_meter_left_on_tcos_when_tcos_retires_is_an_exception_for_recovery() -> None:
    r = tcos_retired(new_record(DEVICE, ELIGIBLE, T0, POLICY), LATER, POLICY)
    assert (r.status, r.reason, r.next_action) == (
        S.EXCEPTION,
        Reason.TCOS_RETIRED,
        NextAction.OPERATOR_REVIEW,
    )
    born = new_record(DEVICE, Eligibility((IneligibleReason.BORN_ECOS,)), T0, POLICY)
    assert tcos_retired(born, LATER, POLICY) is born
    with pytest.raises(IllegalTransition):
        tcos_retired(record(S.IN_FLIGHT), LATER, POLICY)
