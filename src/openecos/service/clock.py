"""The service's clock: injected, so tests and simulations can move time.

Every decision that depends on time (certificate validity, registration at
an instant, future-dated execution, leases) reads :meth:`Clock.now` from the
one clock the runtime was given; nothing in the service calls
``datetime.now`` itself.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """Time that runs with the wall clock from a chosen instant and can be moved forward.

    ``ManualClock(start)`` reads ``start`` plus the real time elapsed since it
    was made (so leases and timeouts still expire), plus every
    :meth:`advance`. Thread-safe.
    """

    __slots__ = ("_lock", "_offset", "_started")

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        real = datetime.now(UTC)
        self._started = real
        self._offset = (start - real) if start is not None else timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += delta
