"""Time for the simulated WAN: wall-clock dates from the event loop, and a loop that skips waits.

Theory of operation. Meters judge certificates and execute future-dated
commands by date (aware UTC), while asyncio schedules by its loop's
monotonic ``time()``. :class:`LoopClock` ties the two together: a date
``epoch`` corresponds to the loop time when the clock was made, and both run
at the same rate. With an ordinary loop that is real time (short latencies
in tests, or a live simulator). With :class:`VirtualTimeLoop` the loop's
time jumps straight to the next timer whenever nothing is ready to run, so a
simulated day, or a command future-dated by a year, passes in milliseconds
while every ordering stays the one real time would give. The virtual loop
still waits for real I/O when no timer is pending (it blocks in ``select``
as any loop does), so it only speeds up simulations that are pure timers,
which the in-process WAN is.

Run a simulation in virtual time with :func:`run_virtual`.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """Dates for meters and loop times for scheduling; one consistent mapping."""

    def now(self) -> datetime: ...

    def loop_time(self, when: datetime) -> float: ...


class LoopClock:
    """``epoch`` at the loop's time of construction, advancing with the loop's clock."""

    __slots__ = ("_epoch", "_loop", "_origin")

    def __init__(self, epoch: datetime, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if epoch.tzinfo is None:
            raise ValueError("the epoch must be timezone-aware (UTC)")
        self._loop = loop or asyncio.get_running_loop()
        self._epoch = epoch
        self._origin = self._loop.time()

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._loop.time() - self._origin)

    def loop_time(self, when: datetime) -> float:
        return self._origin + (when - self._epoch).total_seconds()


class _SkippingSelector(selectors.BaseSelector):
    """A selector that, instead of sleeping until the next timer, advances virtual time."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout is None or timeout <= 0:
            # Something to do now, or nothing scheduled at all: behave as a real selector.
            return ready if ready or timeout is not None else self._inner.select(None)
        self._loop.advance(timeout)
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer when idle."""

    def __init__(self) -> None:
        self._virtual_time = 0.0
        super().__init__(_SkippingSelector(self))

    def time(self) -> float:
        return self._virtual_time

    def advance(self, seconds: float) -> None:
        self._virtual_time += seconds


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` to completion on a :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
