"""The lifecycle of a 6.23 request: one transition table, in this file only.

Theory of operation. A request's state is a
:class:`~openecos.store.enums.RequestStatus`, recorded by the store; every
change of it is an event of :class:`RequestEvent` looked up in
:data:`TRANSITIONS` by :func:`next_status`, which raises
:class:`~openecos.cos.errors.IllegalTransition` for a pair not in the table.
Nothing else decides a request's next state (h11's rule: everything that
affects the state machine lives in one file). The service applies the result
with the store's compare-and-set ``RequestRepository.transition``.

The path of a request::

    Received ──acknowledged──▶ Acknowledged ──accepted──▶ Queued ──command sent──▶ CommandSent
       │                          │    │                    ▲
       └──rejected──▶ Rejected ◀──┘    └──quarantined──▶ Quarantined ──released──┘

    CommandSent ──response success──▶ Completed
                ──response failure──▶ Failed
                ──no response──▶ Failed
                ──future-dated accepted──▶ FutureDatedPending

    FutureDatedPending ──alert success──▶ Completed
                       ──alert failure──▶ Failed
                       ──no response──▶ Failed
                       ──cancelled──▶ Cancelled

- *accepted*: the checks (:mod:`openecos.cos.checks`) and Threshold Anomaly
  Detection (:mod:`openecos.cos.tad`) passed; *rejected*: a check failed;
  *quarantined*: TAD held it; *released*: an operator let it go (it is
  queued; the service re-runs the checks before building, and a failure then
  is *rejected* from Queued); an operator may also *reject* a quarantined one.
- *response failure* covers a partial failure (some cells not replaced).
- *no response*: the meter did not answer (E21), or a future-dated command's
  alert never came (E30); the command's own state is then OutcomeUnknown.
- *cancelled*: a later cancellation 6.23 for the meter succeeded; a queued
  request may be cancelled too, before any command exists.

Rejected, Completed, Failed and Cancelled are final. A device answer that
arrives after its request is final updates the inventory and the command, not
the request.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from openecos.cos.errors import IllegalTransition
from openecos.store.enums import RequestStatus


class RequestEvent(StrEnum):
    """What can happen to a 6.23 request."""

    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    RELEASED = "released"
    COMMAND_SENT = "command-sent"
    RESPONSE_SUCCESS = "response-success"
    RESPONSE_FAILURE = "response-failure"
    FUTURE_DATED_ACCEPTED = "future-dated-accepted"
    ALERT_SUCCESS = "alert-success"
    ALERT_FAILURE = "alert-failure"
    CANCELLED = "cancelled"
    NO_RESPONSE = "no-response"


_S = RequestStatus
_E = RequestEvent

#: (state, event) → next state. Every pair not listed is illegal.
TRANSITIONS: MappingProxyType[tuple[RequestStatus, RequestEvent], RequestStatus] = MappingProxyType(
    {
        (_S.RECEIVED, _E.ACKNOWLEDGED): _S.ACKNOWLEDGED,
        (_S.RECEIVED, _E.REJECTED): _S.REJECTED,
        (_S.ACKNOWLEDGED, _E.ACCEPTED): _S.QUEUED,
        (_S.ACKNOWLEDGED, _E.REJECTED): _S.REJECTED,
        (_S.ACKNOWLEDGED, _E.QUARANTINED): _S.QUARANTINED,
        (_S.QUARANTINED, _E.RELEASED): _S.QUEUED,
        (_S.QUARANTINED, _E.REJECTED): _S.REJECTED,
        (_S.QUEUED, _E.COMMAND_SENT): _S.COMMAND_SENT,
        (_S.QUEUED, _E.REJECTED): _S.REJECTED,
        (_S.QUEUED, _E.CANCELLED): _S.CANCELLED,
        (_S.COMMAND_SENT, _E.RESPONSE_SUCCESS): _S.COMPLETED,
        (_S.COMMAND_SENT, _E.RESPONSE_FAILURE): _S.FAILED,
        (_S.COMMAND_SENT, _E.FUTURE_DATED_ACCEPTED): _S.FUTURE_DATED_PENDING,
        (_S.COMMAND_SENT, _E.NO_RESPONSE): _S.FAILED,
        (_S.FUTURE_DATED_PENDING, _E.ALERT_SUCCESS): _S.COMPLETED,
        (_S.FUTURE_DATED_PENDING, _E.ALERT_FAILURE): _S.FAILED,
        (_S.FUTURE_DATED_PENDING, _E.CANCELLED): _S.CANCELLED,
        (_S.FUTURE_DATED_PENDING, _E.NO_RESPONSE): _S.FAILED,
    }
)

#: States no event leaves.
FINAL_STATES = frozenset({_S.REJECTED, _S.COMPLETED, _S.FAILED, _S.CANCELLED})


def next_status(status: RequestStatus, event: RequestEvent) -> RequestStatus:
    """The state after ``event``; raises :class:`IllegalTransition` if not allowed."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(status, event.value) from None


def allowed_events(status: RequestStatus) -> frozenset[RequestEvent]:
    """The events ``status`` accepts (empty for a final state)."""
    return frozenset(e for (s, e) in TRANSITIONS if s is status)
