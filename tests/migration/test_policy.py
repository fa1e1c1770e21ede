"""EMEHRA policies: for every error class, attempts, backoff bounds, jitter, read-first rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.migration import (
    DEFAULT_POLICIES,
    ELIGIBLE,
    CredentialKnowledge,
    CredentialReading,
    EmehraPolicy,
    ErrorClass,
    InvalidMigrationInput,
    MeterMigration,
    MigrationStatus,
    NextAction,
    Reason,
    RetryPolicy,
    command_sent,
    credentials_read,
    jitter_fraction,
    new_record,
    read_sent,
    response_received,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
DEVICE = Eui64.parse("00DB000000000001")
POLICY = EmehraPolicy(seed=7)


def _fail_once(record: MeterMigration, error: ErrorClass, at: datetime) -> MeterMigration:
    """Sends a 0x0106 at ``at`` and fails it with ``error``; reads the cell (TCoS) if unknown."""
    record = command_sent(record, counter=record.total_attempts + 1, at=at, policy=POLICY)
    record = response_received(record, error, at + timedelta(minutes=1), POLICY)
    if record.status is MigrationStatus.OUTCOME_UNKNOWN:
        record = read_sent(
            record, counter=9000 + record.total_attempts, at=record.next_at or at, policy=POLICY
        )  # type: ignore[arg-type]
        record = credentials_read(record, CredentialReading.TCOS, at + timedelta(hours=1), POLICY)
    return record


@pytest.mark.parametrize("error", list(ErrorClass))
def test_each_class_sends_at_most_its_attempts_then_raises_an_exception(error: ErrorClass) -> None:
    policy = POLICY.policy(error)
    record = new_record(DEVICE, ELIGIBLE, T0, POLICY)
    at = T0
    sent = 0
    while record.status is not MigrationStatus.EXCEPTION:
        assert record.next_action is NextAction.START
        record = _fail_once(record, error, at)
        sent += 1
        at = (record.next_at or at) + timedelta(seconds=1)
        assert sent <= policy.max_attempts
    assert sent == min(policy.max_attempts, POLICY.max_total_attempts)
    assert record.reason is (
        Reason.NOT_RETRYABLE if policy.max_attempts == 1 else Reason.RETRY_BUDGET_SPENT
    )
    assert record.error is error
    assert record.next_action is NextAction.OPERATOR_REVIEW


@pytest.mark.parametrize("error", list(ErrorClass))
def test_each_class_reads_the_credentials_first_exactly_when_configured(error: ErrorClass) -> None:
    record = command_sent(new_record(DEVICE, ELIGIBLE, T0, POLICY), counter=1, at=T0, policy=POLICY)
    after = response_received(record, error, T0, POLICY)
    if DEFAULT_POLICIES[error].read_credentials_first:
        assert after.status is MigrationStatus.OUTCOME_UNKNOWN
        assert after.credentials is CredentialKnowledge.UNKNOWN
        assert after.next_action is NextAction.READ_CREDENTIALS
        assert after.next_at == T0 + POLICY.read_delay
    else:
        assert after.status in (MigrationStatus.RETRY_WAIT, MigrationStatus.EXCEPTION)
        assert after.credentials is CredentialKnowledge.TCOS


@pytest.mark.parametrize("error", [e for e in ErrorClass if DEFAULT_POLICIES[e].max_attempts > 1])
def test_each_retried_class_waits_within_its_backoff_bounds(error: ErrorClass) -> None:
    policy = POLICY.policy(error)
    record = new_record(DEVICE, ELIGIBLE, T0, POLICY)
    at = T0
    for attempt in range(1, policy.max_attempts):
        record = _fail_once(record, error, at)
        assert record.status is MigrationStatus.RETRY_WAIT
        low, high = policy.delay_bounds(attempt)
        assert record.next_at is not None
        assert low <= record.next_at - record.since <= high
        assert record.next_at - record.since == policy.delay(
            attempt, seed=POLICY.seed, device=DEVICE
        )
        at = record.next_at


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(10, timedelta(minutes=10), 2.0, timedelta(hours=1), 0.0)
    delays = [policy.nominal_delay(n) for n in range(1, 8)]
    assert delays[:3] == [timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=40)]
    assert delays[3:] == [timedelta(hours=1)] * 4


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    device=st.binary(min_size=8, max_size=8),
    error=st.sampled_from(ErrorClass),
)
def test_jittered_delay_is_reproducible_and_within_bounds(
    attempt: int, seed: int, device: bytes, error: ErrorClass
) -> None:
    policy = DEFAULT_POLICIES[error]
    eui = Eui64(device)
    delay = policy.delay(attempt, seed=seed, device=eui)
    assert delay == policy.delay(attempt, seed=seed, device=eui)
    low, high = policy.delay_bounds(attempt)
    assert low <= delay <= high
    assert 0.0 <= jitter_fraction(seed, eui, attempt) < 1.0


def test_jitter_spreads_meters_and_depends_on_the_seed() -> None:
    policy = DEFAULT_POLICIES[ErrorClass.NO_RESPONSE]
    meters = [Eui64.from_int(n) for n in range(50)]
    delays = {policy.delay(1, seed=1, device=m) for m in meters}
    assert len(delays) > 40
    other_seed = [policy.delay(1, seed=2, device=m) for m in meters]
    assert other_seed != [policy.delay(1, seed=1, device=m) for m in meters]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": 2, "multiplier": 0.5},
        {"max_attempts": 2, "jitter": 1.5},
        {"max_attempts": 2, "base_delay": timedelta(hours=2), "max_delay": timedelta(hours=1)},
    ],
)
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidMigrationInput):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_every_class_needs_a_policy() -> None:
    partial = {e: p for e, p in DEFAULT_POLICIES.items() if e is not ErrorClass.REJECTED}
    with pytest.raises(InvalidMigrationInput):
        EmehraPolicy(policies=partial)


def test_the_total_cap_applies_across_classes() -> None:
    policy = EmehraPolicy(max_total_attempts=2)
    record = new_record(DEVICE, ELIGIBLE, T0, policy)
    for n in (1, 2):
        record = command_sent(record, counter=n, at=T0, policy=policy)
        error = ErrorClass.METER_BUSY if n == 1 else ErrorClass.DELIVERY_FAILED
        record = response_received(record, error, T0, policy)
    assert record.status is MigrationStatus.EXCEPTION
    assert record.reason is Reason.RETRY_BUDGET_SPENT
