"""Threshold Anomaly Detection for 6.23: sliding-window counts, quarantine, release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.cos import (
    NotQuarantined,
    TadConfig,
    TadState,
    TadStateInvalid,
    Verdict,
    assess,
    discard,
    release,
)
from openecos.duis import QuarantineBreach, QuarantinedRequestAlert, RequestId
from openecos.eui import Eui64

ALICE = Eui64.parse("90B3D51F30010000")
BOB = Eui64.parse("90B3D51F30030000")
DEVICE = Eui64.parse("00DB1234567890A0")
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CONFIG = TadConfig(
    default_user_threshold=3,
    dcc_threshold=5,
    window=timedelta(hours=1),
    bucket=timedelta(minutes=1),
)


def run(state: TadState, users: list[Eui64], at: datetime = T0) -> tuple[TadState, list[Verdict]]:
    verdicts = []
    for user in users:
        state, decision = assess(state, user, at, CONFIG)
        verdicts.append(decision.verdict)
    return state, verdicts


def test_a_user_is_quarantined_when_the_threshold_is_passed() -> None:
    state, verdicts = run(TadState(), [ALICE] * 4)
    assert verdicts == [Verdict.PROCEED] * 3 + [Verdict.QUARANTINE]
    (held,) = state.held
    assert (held.user_id, held.breach) == (ALICE, QuarantineBreach.USER_THRESHOLD)


def test_the_quarantine_alert_names_the_breach_and_event() -> None:
    state, _ = run(TadState(), [ALICE] * 3)
    state, decision = assess(state, ALICE, T0, CONFIG)
    request = RequestId(ALICE, DEVICE, 77)
    assert decision.quarantined
    assert decision.alert(request) == QuarantinedRequestAlert(
        QuarantineBreach.USER_THRESHOLD, request, decision.quarantine_event_ref or 0
    )
    _, proceed = assess(TadState(), ALICE, T0, CONFIG)
    with pytest.raises(ValueError):
        proceed.alert(request)


def test_the_dcc_wide_threshold_counts_every_user() -> None:
    state, verdicts = run(TadState(), [ALICE, BOB, ALICE, BOB, ALICE, BOB])
    assert verdicts == [Verdict.PROCEED] * 5 + [Verdict.QUARANTINE]
    assert state.held[0].breach is QuarantineBreach.DCC_THRESHOLD
    assert state.held[0].user_id == BOB


def test_per_user_thresholds_override_the_default() -> None:
    config = TadConfig(
        default_user_threshold=3,
        dcc_threshold=100,
        window=timedelta(hours=1),
        bucket=timedelta(minutes=1),
        user_thresholds=((BOB, 1),),
    )
    state, first = assess(TadState(), BOB, T0, config)
    _, second = assess(state, BOB, T0, config)
    assert (first.verdict, second.verdict) == (Verdict.PROCEED, Verdict.QUARANTINE)


def test_counts_leave_the_window() -> None:
    state, _ = run(TadState(), [ALICE] * 3)
    _, inside = assess(state, ALICE, T0 + timedelta(minutes=59), CONFIG)
    later, outside = assess(state, ALICE, T0 + timedelta(hours=1), CONFIG)
    assert inside.verdict is Verdict.QUARANTINE
    assert outside.verdict is Verdict.PROCEED and outside.user_count == 1
    # The old buckets are gone from the state: only the new request is held.
    assert sum(count for _, count in later.dcc) == 1
    assert [user for user, _ in later.users] == [ALICE]


def test_release_lets_the_request_go_and_counts_it() -> None:
    state, _ = run(TadState(), [ALICE] * 3)
    state, decision = assess(state, ALICE, T0, CONFIG)
    ref = decision.quarantine_event_ref
    assert ref is not None
    released_state, held = release(state, ref, T0 + timedelta(minutes=5), CONFIG)
    assert held.user_id == ALICE and released_state.held == ()
    # It now counts: four of Alice's in the window.
    _, after = assess(released_state, BOB, T0 + timedelta(minutes=5), CONFIG)
    assert after.dcc_count == 5
    with pytest.raises(NotQuarantined):
        release(released_state, ref, T0, CONFIG)


def test_discard_drops_a_held_request_without_counting_it() -> None:
    state, _ = run(TadState(), [ALICE] * 4)
    ref = state.held[0].quarantine_event_ref
    dropped, _ = discard(state, ref)
    assert dropped.held == () and dropped.dcc == state.dcc
    with pytest.raises(NotQuarantined):
        discard(dropped, ref)


def test_event_references_are_not_reused() -> None:
    state, _ = run(TadState(), [ALICE] * 6)
    refs = [q.quarantine_event_ref for q in state.held]
    assert refs == sorted(set(refs)) and len(refs) == 3
    state, _ = discard(state, refs[-1])
    state, decision = assess(state, ALICE, T0, CONFIG)
    assert decision.quarantine_event_ref not in refs


def test_state_survives_json() -> None:
    state, _ = run(TadState(), [ALICE, BOB, ALICE, ALICE, ALICE])
    assert state.held
    assert TadState.from_json(state.to_json()) == state


@pytest.mark.parametrize(
    "text", ["", "{}", "[]", '{"dcc":[],"users":{},"held":[],"next_event_ref":-1}', "nul"]
)
def test_bad_persisted_state_is_a_typed_error(text: str) -> None:
    with pytest.raises(TadStateInvalid):
        TadState.from_json(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": timedelta(minutes=90), "bucket": timedelta(minutes=60)},
        {"bucket": timedelta(0)},
        {"default_user_threshold": -1},
    ],
)
def test_inconsistent_configuration_is_refused(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"default_user_threshold": 1, "dcc_threshold": 1, **kwargs}
    with pytest.raises(ValueError):
        TadConfig(**values)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([ALICE, BOB]), st.integers(min_value=0, max_value=180)),
        max_size=40,
    )
)
def test_no_user_ever_proceeds_past_its_threshold_in_a_window(
    events: list[tuple[Eui64, int]],
) -> None:
    # Whole minutes from T0: aligned to the buckets, so the bucketed window and the
    # exact one hold the same requests (between boundaries the bucketed one holds
    # up to one bucket less history: tad.py theory of operation).
    state = TadState()
    proceeded: list[tuple[Eui64, datetime]] = []
    for user, minutes in sorted(events, key=lambda e: e[1]):
        at = T0 + timedelta(minutes=minutes)
        state, decision = assess(state, user, at, CONFIG)
        if not decision.quarantined:
            proceeded.append((user, at))
        # The window never holds more than a threshold's worth of going-ahead requests.
        recent = [(u, t) for u, t in proceeded if t > at - CONFIG.window]
        assert len(recent) <= CONFIG.dcc_threshold
        assert sum(1 for u, _ in recent if u == user) <= CONFIG.threshold_for(user)
        assert TadState.from_json(state.to_json()) == state
