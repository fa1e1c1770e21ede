"""Run control and capacity: whether migration runs, and which meters to start now.

Theory of operation. Two pure pieces the migration engine calls on each tick.

*Run control* is one small table, :data:`RUN_TRANSITIONS`, over
:class:`RunState`::

    stopped ──start──▶ running ──pause──▶ paused ──resume──▶ running
    running/paused ──drain──▶ draining ──drained──▶ stopped
    draining ──resume──▶ running        any but stopped ──stop──▶ stopped

Only ``running`` starts new migrations (first attempts or retries). In
``paused`` and ``draining`` the commands already sent are still answered,
timed out and resolved: a command cannot be unsent, so "stop" means start
nothing new, never "forget what is in flight" (seed 002: migration must be
able to stop and start without stranding meters). ``draining`` ends with the
engine's ``drained`` event when nothing is in flight. Migration may start
only in the ETMAD migration regime (:func:`may_start`).

*Capacity* (:func:`plan_starts`): given the limits (per day, per hour, in
flight), what was already used in the current day and hour and what is in
flight now, and the candidates, the meters to start now: at most
``min(day headroom, hour headroom, in-flight headroom)`` of them, in the
order of a configurable key (:class:`OrderField`: supplier, model, region...;
retries due first by default). Days and hours are the caller's (the engine
counts starts in the current UTC day and hour); this module never reads a
clock. The result never exceeds any limit, whatever the inputs (proven with
hypothesis).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from openecos.eui import Eui64
from openecos.migration.errors import IllegalTransition, InvalidMigrationInput
from openecos.migration.regime import Regime, migration_may_run

# -- run control -------------------------------------------------------------------------------


class RunState(StrEnum):
    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"
    DRAINING = "draining"


class RunEvent(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    DRAIN = "drain"
    DRAINED = "drained"
    """The engine saw nothing in flight while draining."""
    STOP = "stop"


_S, _V = RunState, RunEvent

#: (run state, event) → next run state. Every pair not listed is illegal.
RUN_TRANSITIONS: MappingProxyType[tuple[RunState, RunEvent], RunState] = MappingProxyType(
    {
        (_S.STOPPED, _V.START): _S.RUNNING,
        (_S.RUNNING, _V.PAUSE): _S.PAUSED,
        (_S.RUNNING, _V.DRAIN): _S.DRAINING,
        (_S.RUNNING, _V.STOP): _S.STOPPED,
        (_S.PAUSED, _V.RESUME): _S.RUNNING,
        (_S.PAUSED, _V.DRAIN): _S.DRAINING,
        (_S.PAUSED, _V.STOP): _S.STOPPED,
        (_S.DRAINING, _V.RESUME): _S.RUNNING,
        (_S.DRAINING, _V.DRAINED): _S.STOPPED,
        (_S.DRAINING, _V.STOP): _S.STOPPED,
    }
)


def next_run_state(state: RunState, event: RunEvent) -> RunState:
    """The run state after ``event``; raises :class:`IllegalTransition` if not allowed."""
    try:
        return RUN_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition("run control", state.value, event.value) from None


def may_start(regime: Regime, state: RunState) -> bool:
    """Whether new 0x0106 commands may be started: migration regime and running."""
    return migration_may_run(regime) and state is RunState.RUNNING


# -- capacity ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapacityLimits:
    """Starts allowed per day and per hour, and commands allowed in flight at once."""

    per_day: int
    per_hour: int
    in_flight: int

    def __post_init__(self) -> None:
        for name in ("per_day", "per_hour", "in_flight"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidMigrationInput(f"capacity limit {name} must be an int >= 0")


@dataclass(frozen=True, slots=True)
class CapacityUsage:
    """What is used now: starts this day and this hour, and commands in flight."""

    started_today: int
    started_this_hour: int
    in_flight: int

    def __post_init__(self) -> None:
        for name in ("started_today", "started_this_hour", "in_flight"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidMigrationInput(f"capacity usage {name} must be an int >= 0")


def headroom(limits: CapacityLimits, usage: CapacityUsage) -> int:
    """How many more meters may start now (0 when any limit is reached or exceeded)."""
    return max(
        0,
        min(
            limits.per_day - usage.started_today,
            limits.per_hour - usage.started_this_hour,
            limits.in_flight - usage.in_flight,
        ),
    )


class OrderField(StrEnum):
    """A field of :class:`Candidate` the start order may use."""

    RETRY = "retry"
    """Retries due before first attempts (sorted as ``not retry``)."""
    DUE_AT = "due_at"
    SUPPLIER = "supplier"
    MANUFACTURER = "manufacturer"
    MODEL = "model"
    REGION = "region"
    EUI = "eui"


DEFAULT_ORDER: tuple[OrderField, ...] = (OrderField.RETRY, OrderField.DUE_AT, OrderField.EUI)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A meter the engine could start now (eligible, or a retry that is due).

    ``due_at`` orders retries and first attempts by when they became due,
    as a sortable number (seconds since any fixed origin the engine chooses).
    """

    eui: Eui64
    supplier: str = ""
    manufacturer: str = ""
    model: str = ""
    region: str = ""
    retry: bool = False
    due_at: float = 0.0


def _sort_key(candidate: Candidate, order: tuple[OrderField, ...]) -> tuple[object, ...]:
    key: list[object] = []
    for f in order:
        if f is OrderField.RETRY:
            key.append(not candidate.retry)
        elif f is OrderField.EUI:
            key.append(candidate.eui.value)
        else:
            key.append(getattr(candidate, f.value))
    key.append(candidate.eui.value)  # a total order: the same inputs give the same plan
    return tuple(key)


def plan_starts(
    candidates: Iterable[Candidate],
    *,
    limits: CapacityLimits,
    usage: CapacityUsage,
    order: tuple[OrderField, ...] = DEFAULT_ORDER,
) -> tuple[Candidate, ...]:
    """The meters to start now, in order, within every limit (see module doc).

    A meter listed twice is started once.
    """
    room = headroom(limits, usage)
    if room == 0:
        return ()
    unique: dict[bytes, Candidate] = {}
    for candidate in candidates:
        unique.setdefault(candidate.eui.value, candidate)
    ordered = sorted(unique.values(), key=lambda c: _sort_key(c, order))
    return tuple(ordered[:room])
