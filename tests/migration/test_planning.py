"""Run control (one small table) and capacity planning (never above any limit)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.migration import (
    RUN_TRANSITIONS,
    Candidate,
    CapacityLimits,
    CapacityUsage,
    IllegalTransition,
    InvalidMigrationInput,
    OrderField,
    RunEvent,
    RunState,
    headroom,
    next_run_state,
    plan_starts,
)


@pytest.mark.parametrize(("transition", "target"), sorted(RUN_TRANSITIONS.items()))
def test_every_run_control_transition(
    transition: tuple[RunState, RunEvent], target: RunState
) -> None:
    assert next_run_state(*transition) is target


ILLEGAL = [(s, e) for s in RunState for e in RunEvent if (s, e) not in RUN_TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_run_control_events_not_in_the_table_raise(state: RunState, event: RunEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_run_state(state, event)


def test_stop_is_reachable_from_every_state_but_stopped() -> None:
    for state in RunState:
        if state is not RunState.STOPPED:
            assert next_run_state(state, RunEvent.STOP) is RunState.STOPPED


def _eui(n: int) -> Eui64:
    return Eui64.from_int(n)


def test_headroom_is_the_tightest_limit() -> None:
    limits = CapacityLimits(per_day=100, per_hour=10, in_flight=5)
    assert headroom(limits, CapacityUsage(0, 0, 0)) == 5
    assert headroom(limits, CapacityUsage(0, 8, 0)) == 2
    assert headroom(limits, CapacityUsage(99, 0, 0)) == 1
    assert headroom(limits, CapacityUsage(120, 0, 0)) == 0  # over a limit: nothing, not negative


def test_ordering_by_a_configurable_key() -> None:
    candidates = [
        Candidate(_eui(1), supplier="B", model="m2", region="north"),
        Candidate(_eui(2), supplier="A", model="m3", region="south"),
        Candidate(_eui(3), supplier="A", model="m1", region="north"),
        Candidate(_eui(4), supplier="C", model="m1", region="east", retry=True),
    ]
    limits = CapacityLimits(10, 10, 10)
    usage = CapacityUsage(0, 0, 0)

    def plan(*order: OrderField) -> list[int]:
        return [
            int(c.eui) for c in plan_starts(candidates, limits=limits, usage=usage, order=order)
        ]

    assert plan(OrderField.SUPPLIER, OrderField.MODEL) == [3, 2, 1, 4]
    assert plan(OrderField.MODEL) == [3, 4, 1, 2]
    assert plan(OrderField.REGION, OrderField.SUPPLIER) == [4, 3, 1, 2]
    assert plan(OrderField.RETRY, OrderField.SUPPLIER) == [4, 2, 3, 1]


def test_a_meter_listed_twice_starts_once() -> None:
    candidates = [Candidate(_eui(1)), Candidate(_eui(1), retry=True)]
    planned = plan_starts(candidates, limits=CapacityLimits(5, 5, 5), usage=CapacityUsage(0, 0, 0))
    assert len(planned) == 1


@pytest.mark.parametrize("value", [-1, True, 1.5])
def test_limits_and_usage_must_be_counts(value: object) -> None:
    with pytest.raises(InvalidMigrationInput):
        CapacityLimits(value, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidMigrationInput):
        CapacityUsage(1, value, 1)  # type: ignore[arg-type]


counts = st.integers(min_value=0, max_value=200)


@settings(max_examples=300, deadline=None)
@given(
    limits=st.builds(CapacityLimits, counts, counts, counts),
    usage=st.builds(CapacityUsage, counts, counts, counts),
    euis=st.lists(st.integers(min_value=0, max_value=300), max_size=250),
    order=st.lists(st.sampled_from(OrderField), max_size=3, unique=True),
)
def test_a_plan_never_exceeds_any_limit(
    limits: CapacityLimits, usage: CapacityUsage, euis: list[int], order: list[OrderField]
) -> None:
    candidates = [Candidate(_eui(n), supplier=str(n % 3), retry=n % 5 == 0) for n in euis]
    planned = plan_starts(candidates, limits=limits, usage=usage, order=tuple(order))
    assert usage.started_today + len(planned) <= max(limits.per_day, usage.started_today)
    assert usage.started_this_hour + len(planned) <= max(limits.per_hour, usage.started_this_hour)
    assert usage.in_flight + len(planned) <= max(limits.in_flight, usage.in_flight)
    assert len({c.eui for c in planned}) == len(planned)
    # ... and it uses all the room there is.
    assert len(planned) == min(headroom(limits, usage), len(set(euis)))
