"""How the simulated WAN misbehaves: latency, loss, outages and meter faults, as values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from openecos.eui import Eui64


@dataclass(frozen=True, slots=True)
class Latency:
    """One-way delay: ``fixed`` seconds plus a uniform ``[0, jitter)`` seconds."""

    fixed: float = 0.05
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.fixed < 0 or self.jitter < 0:
            raise ValueError("latency and jitter are not negative")


@dataclass(frozen=True, slots=True)
class Outage:
    """Between ``start`` (inclusive) and ``end`` (exclusive) nothing reaches ``device``.

    ``device=None`` is the whole WAN. A message whose arrival falls inside an
    outage is lost, in either direction.
    """

    start: datetime
    end: datetime
    device: Eui64 | None = None

    def covers(self, device: Eui64, when: datetime) -> bool:
        return (self.device is None or self.device == device) and self.start <= when < self.end


class MeterFault(StrEnum):
    """What a meter may do wrong with a command (drawn once per command delivered)."""

    NO_RESPONSE = "acts on the command but its response is lost"
    BUSY = "answers resourcesBusy without acting"
    MALFORMED_RESPONSE = "acts on the command and sends a corrupted response"
    REBOOT = "reboots: the command and any future-dated command are lost"
    BROKEN = "breaks for good: never answers again"


@dataclass(frozen=True, slots=True)
class MeterFaults:
    """The probability of each fault per delivered command; they are exclusive, sum ≤ 1."""

    no_response: float = 0.0
    busy: float = 0.0
    malformed_response: float = 0.0
    reboot: float = 0.0
    broken: float = 0.0

    def __post_init__(self) -> None:
        rates = self.rates()
        if any(r < 0 for _, r in rates) or sum(r for _, r in rates) > 1:
            raise ValueError("fault rates are probabilities that sum to at most 1")

    def rates(self) -> tuple[tuple[MeterFault, float], ...]:
        return (
            (MeterFault.NO_RESPONSE, self.no_response),
            (MeterFault.BUSY, self.busy),
            (MeterFault.MALFORMED_RESPONSE, self.malformed_response),
            (MeterFault.REBOOT, self.reboot),
            (MeterFault.BROKEN, self.broken),
        )

    def draw(self, roll: float) -> MeterFault | None:
        """The fault a uniform ``roll`` in [0, 1) selects, or ``None``."""
        for fault, rate in self.rates():
            if roll < rate:
                return fault
            roll -= rate
        return None


@dataclass(frozen=True, slots=True)
class WanConfig:
    """Everything that shapes delivery; ``seed`` makes a run reproducible."""

    latency: Latency = field(default_factory=Latency)
    loss: float = 0.0
    """Probability that any one message (command, response or alert) is lost."""
    outages: tuple[Outage, ...] = ()
    faults: MeterFaults = field(default_factory=MeterFaults)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.loss <= 1:
            raise ValueError("loss is a probability")
