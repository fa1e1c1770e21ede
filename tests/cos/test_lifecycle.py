"""The 6.23 request lifecycle (src/openecos/cos/lifecycle.py): the one transition table."""

from __future__ import annotations

import pytest

from openecos.cos import (
    FINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    RequestEvent,
    allowed_events,
    next_status,
)
from openecos.store.enums import RequestStatus as S

E = RequestEvent

# Every allowed transition, written out from the theory of operation: the table must
# hold exactly these, so adding or dropping one is a deliberate change here too.
EXPECTED = {
    (S.RECEIVED, E.ACKNOWLEDGED): S.ACKNOWLEDGED,
    (S.RECEIVED, E.REJECTED): S.REJECTED,
    (S.ACKNOWLEDGED, E.ACCEPTED): S.QUEUED,
    (S.ACKNOWLEDGED, E.REJECTED): S.REJECTED,
    (S.ACKNOWLEDGED, E.QUARANTINED): S.QUARANTINED,
    (S.QUARANTINED, E.RELEASED): S.QUEUED,
    (S.QUARANTINED, E.REJECTED): S.REJECTED,
    (S.QUEUED, E.COMMAND_SENT): S.COMMAND_SENT,
    (S.QUEUED, E.REJECTED): S.REJECTED,
    (S.QUEUED, E.CANCELLED): S.CANCELLED,
    (S.COMMAND_SENT, E.RESPONSE_SUCCESS): S.COMPLETED,
    (S.COMMAND_SENT, E.RESPONSE_FAILURE): S.FAILED,
    (S.COMMAND_SENT, E.FUTURE_DATED_ACCEPTED): S.FUTURE_DATED_PENDING,
    (S.COMMAND_SENT, E.NO_RESPONSE): S.FAILED,
    (S.FUTURE_DATED_PENDING, E.ALERT_SUCCESS): S.COMPLETED,
    (S.FUTURE_DATED_PENDING, E.ALERT_FAILURE): S.FAILED,
    (S.FUTURE_DATED_PENDING, E.CANCELLED): S.CANCELLED,
    (S.FUTURE_DATED_PENDING, E.NO_RESPONSE): S.FAILED,
}


@pytest.mark.parametrize(("status", "event"), sorted(EXPECTED))
def test_each_allowed_transition_leads_to_its_state(status: S, event: RequestEvent) -> None:
    assert next_status(status, event) is EXPECTED[(status, event)]


def test_the_table_holds_exactly_the_documented_transitions() -> None:
    assert dict(TRANSITIONS) == EXPECTED


ILLEGAL = sorted({(s, e) for s in S for e in E} - set(EXPECTED))


@pytest.mark.parametrize(("status", "event"), ILLEGAL)
def test_every_other_pair_raises_illegal_transition(status: S, event: RequestEvent) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_status(status, event)
    assert info.value.status is status
    assert info.value.event == event.value


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (S.COMPLETED, E.RESPONSE_SUCCESS),  # a late duplicate response
        (S.FAILED, E.ALERT_SUCCESS),  # an alert after the future-dated time-out
        (S.RECEIVED, E.COMMAND_SENT),  # skipping the checks
        (S.QUARANTINED, E.COMMAND_SENT),  # bypassing quarantine
        (S.CANCELLED, E.RELEASED),
    ],
)
def test_notable_illegal_transitions_raise(status: S, event: RequestEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_status(status, event)


def test_final_states_accept_no_event() -> None:
    for status in FINAL_STATES:
        assert allowed_events(status) == frozenset()
    for status in set(S) - FINAL_STATES:
        assert allowed_events(status), status


def test_every_non_final_state_can_reach_a_final_state() -> None:
    reachable = set(FINAL_STATES)
    changed = True
    while changed:
        changed = False
        for (status, _), target in TRANSITIONS.items():
            if target in reachable and status not in reachable:
                reachable.add(status)
                changed = True
    assert reachable == set(S)
