"""An in-process simulated WAN: commands to simulated meters, responses and alerts back.

Theory of operation. :class:`Fleet` holds the meters' states (the only
mutable place they live) and forwards to :mod:`openecos.device`, which owns
every meter rule; nothing here looks inside a message. :class:`SimulatedWan`
moves bytes on the running asyncio loop:

* :meth:`SimulatedWan.send` returns at once; after the configured latency the
  command reaches the meter, unless it is lost (``loss``) or an outage covers
  the meter or the WAN at its arrival time;
* at the meter one fault may be drawn (:class:`~openecos.network.config.MeterFaults`):
  no response, busy, a corrupted (truncated) response, a reboot losing the
  command and any future-dated one, or breaking for good;
* each response or alert travels back with its own latency, loss and outage
  checks and is handed to the receiver as a :class:`Delivery`;
* when a meter holds a future-dated command, a timer at its execution time
  lets the meter's clock pass it, and the 0x00CB alert goes back the same way.

Every random draw comes from one ``random.Random(seed)``; with the same seed,
the same sends and a :class:`~openecos.network.clock.VirtualTimeLoop`, a run
repeats exactly. Rejections (commands a meter discarded) are counted and
passed to ``on_rejection`` if given, for tests and diagnostics.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from openecos.device import (
    MeterOutput,
    MeterProfile,
    MeterState,
    Rejection,
    Transition,
    advance,
    handle,
    reboot,
)
from openecos.eui import Eui64
from openecos.network.clock import Clock
from openecos.network.config import MeterFault, WanConfig

Receiver = Callable[["Delivery"], Awaitable[None] | None]


class Fleet:
    """Simulated meters by EUI sharing one :class:`MeterProfile`."""

    __slots__ = ("_broken", "_states", "profile")

    def __init__(self, profile: MeterProfile, meters: Iterable[MeterState] = ()) -> None:
        self.profile = profile
        self._states: dict[Eui64, MeterState] = {}
        self._broken: set[Eui64] = set()
        for meter in meters:
            self.add(meter)

    def add(self, meter: MeterState) -> None:
        self._states[meter.device] = meter

    def __getitem__(self, device: Eui64) -> MeterState:
        return self._states[device]

    def __contains__(self, device: object) -> bool:
        return device in self._states

    def __len__(self) -> int:
        return len(self._states)

    def is_broken(self, device: Eui64) -> bool:
        return device in self._broken

    def break_meter(self, device: Eui64) -> None:
        self._broken.add(device)

    def handle(
        self, device: Eui64, message: bytes, now: datetime, *, busy: bool = False
    ) -> Transition:
        transition = handle(self._states[device], message, now, self.profile, busy=busy)
        self._states[device] = transition.state
        return transition

    def advance(self, device: Eui64, now: datetime) -> Transition:
        transition = advance(self._states[device], now, self.profile)
        self._states[device] = transition.state
        return transition

    def reboot(self, device: Eui64, now: datetime) -> Transition:
        transition = reboot(self._states[device], now, self.profile)
        self._states[device] = transition.state
        return transition


@dataclass(frozen=True, slots=True)
class Delivery:
    """A meter's message as it reaches the receiver."""

    device: Eui64
    output: MeterOutput
    sent_at: datetime
    received_at: datetime

    @property
    def message(self) -> bytes:
        return self.output.message


@dataclass(slots=True)
class WanStats:
    """Counters of what happened, for tests and reports."""

    commands_sent: int = 0
    commands_delivered: int = 0
    commands_lost: int = 0
    commands_rejected: int = 0
    to_unknown_or_broken: int = 0
    outputs_sent: int = 0
    outputs_delivered: int = 0
    outputs_lost: int = 0
    faults: Counter[MeterFault] = field(default_factory=Counter)


class SimulatedWan:
    """See the module docstring. Use on one event loop; ``close()`` when done."""

    def __init__(
        self,
        fleet: Fleet,
        receiver: Receiver,
        *,
        clock: Clock,
        config: WanConfig | None = None,
        on_rejection: Callable[[Eui64, Rejection], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.config = config or WanConfig()
        self.stats = WanStats()
        self._receiver = receiver
        self._clock = clock
        self._on_rejection = on_rejection
        self._rng = random.Random(self.config.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[Eui64, tuple[datetime, asyncio.TimerHandle]] = {}

    # -- public -------------------------------------------------------------------------------

    def send(self, device: Eui64, command: bytes) -> None:
        """Puts a command on the WAN for ``device``; returns at once."""
        self.stats.commands_sent += 1
        self._spawn(self._deliver_command(device, bytes(command), self._clock.now()))

    async def drain(self, *, timers: bool = False) -> None:
        """Waits until nothing is in flight; with ``timers=True`` also until every held
        future-dated command has executed (use with a virtual-time loop)."""
        loop = asyncio.get_running_loop()
        while self._tasks or (timers and self._timers):
            if self._tasks:
                await asyncio.gather(*tuple(self._tasks))
                continue
            due = min(when for when, _ in self._timers.values())
            await asyncio.sleep(max(0.0, self._clock.loop_time(due) - loop.time()) + 1e-3)

    def close(self) -> None:
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()

    # -- delivery -----------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _delay(self) -> float:
        latency = self.config.latency
        return latency.fixed + (self._rng.random() * latency.jitter if latency.jitter else 0.0)

    def _lost(self, device: Eui64) -> bool:
        now = self._clock.now()
        if any(o.covers(device, now) for o in self.config.outages):
            return True
        return self.config.loss > 0 and self._rng.random() < self.config.loss

    async def _deliver_command(self, device: Eui64, command: bytes, sent_at: datetime) -> None:
        await asyncio.sleep(self._delay())
        if self._lost(device):
            self.stats.commands_lost += 1
            return
        if device not in self.fleet or self.fleet.is_broken(device):
            self.stats.to_unknown_or_broken += 1
            return
        self.stats.commands_delivered += 1
        now = self._clock.now()
        fault = self.config.faults.draw(self._rng.random())
        if fault is not None:
            self.stats.faults[fault] += 1
        if fault is MeterFault.BROKEN:
            self.fleet.break_meter(device)
            return
        if fault is MeterFault.REBOOT:
            self.fleet.reboot(device, now)
            self._schedule(device)
            return
        transition = self.fleet.handle(device, command, now, busy=fault is MeterFault.BUSY)
        if transition.rejection is not None:
            self.stats.commands_rejected += 1
            if self._on_rejection is not None:
                self._on_rejection(device, transition.rejection)
        self._schedule(device)
        self._emit(device, transition.outputs, now, fault)

    def _emit(
        self,
        device: Eui64,
        outputs: tuple[MeterOutput, ...],
        now: datetime,
        fault: MeterFault | None = None,
    ) -> None:
        for output in outputs:
            if fault is MeterFault.NO_RESPONSE:
                continue
            if fault is MeterFault.MALFORMED_RESPONSE:
                cut = self._rng.randrange(1, len(output.message))
                output = MeterOutput(
                    output.kind, output.recipient, output.originator_counter, output.message[:cut]
                )
            self.stats.outputs_sent += 1
            self._spawn(self._deliver_output(device, output, now))

    async def _deliver_output(self, device: Eui64, output: MeterOutput, sent_at: datetime) -> None:
        await asyncio.sleep(self._delay())
        if self._lost(device):
            self.stats.outputs_lost += 1
            return
        self.stats.outputs_delivered += 1
        result = self._receiver(Delivery(device, output, sent_at, self._clock.now()))
        if inspect.isawaitable(result):
            await result

    # -- future-dated commands ----------------------------------------------------------------

    def _schedule(self, device: Eui64) -> None:
        """Keeps one timer per meter at its held command's execution time (or none)."""
        pending = self.fleet[device].pending
        current = self._timers.get(device)
        if (
            pending is not None
            and current is not None
            and current[0] == pending.execution_date_time
        ):
            return
        if current is not None:
            current[1].cancel()
            del self._timers[device]
        if pending is None:
            return
        loop = asyncio.get_running_loop()
        when = pending.execution_date_time
        handle = loop.call_at(self._clock.loop_time(when), self._execute_due, device)
        self._timers[device] = (when, handle)

    def _execute_due(self, device: Eui64) -> None:
        self._timers.pop(device, None)
        if self.fleet.is_broken(device):
            return
        now = self._clock.now()
        transition = self.fleet.advance(device, now)
        self._schedule(device)
        self._emit(device, transition.outputs, now)
