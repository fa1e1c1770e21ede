"""How the migration engine reaches the simulated estate, with reproducible meter faults.

Theory of operation. The engine hands command bytes to a ``Send`` callable
(:data:`openecos.service.worker.Send`). Inside ``openecos serve`` that is the
simulated WAN over the persistent estate; a worker process of its own
(``openecos migrate run``) and the big tests use :class:`EstateDelivery`,
which delivers synchronously to :class:`~openecos.service.estate.SimulatedEstate`
(one database transaction per meter input, its outputs durable with it).

:class:`FaultPlan` injects the meter faults of
:class:`~openecos.network.MeterFaults`, drawn not from a random generator
but from a hash of (seed, meter, originator, counter), so every process, and
a process restarted after a crash, draws the same fault for the same
command. Faults on the way in (a reboot that loses the command, a meter that
breaks for good, a busy meter) happen at delivery; faults on the way back (a
lost response, a truncated one, and, beyond the WAN's set, a response whose
signature was damaged) happen when the engine reads the output
(:meth:`FaultPlan.return_leg`), since the estate's outputs are durable the
moment the meter sends them (:mod:`openecos.service.estate`).

Beyond the WAN's set, ``rejected`` is a meter that authenticates a CS02b
command, changes nothing and reports statusCode ``other`` (127) for every
cell, in a response it signs itself: EMEHRA's REJECTED class ("the meter
reported another failure status"). The simulated meter never chooses that
status, so the fault builds the answer from the meter's own busy answer
(same seq numbers, same cells, nothing replaced) with the status changed.

Batches. The engine sends what one step recorded together
(:func:`deliver_all`): a ``Deliver`` that also has ``deliver_many``
(:class:`BatchDeliver`) gets the whole batch in one call, so a network
adapter in another process (or a real head-end system's bulk interface)
costs one hand-over per batch rather than per meter; a plain ``Deliver`` is
called once per command, as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Protocol, runtime_checkable

from openecos.device import MeterProfile, MeterState, Transition, handle
from openecos.device.messages import cs02b_response
from openecos.device.state import MeterOutput
from openecos.eui import Eui64
from openecos.gbcs import (
    StatusCode,
    UpdateSecurityCredentialsResponse,
    decode_frame,
    decode_payload,
)
from openecos.network import MeterFault, MeterFaults
from openecos.service.clock import Clock
from openecos.service.estate import SimulatedEstate
from openecos.store import SimulatedOutput

#: Delivers command bytes: ``(device, originator, counter, bytes) -> accepted by the network``.
Deliver = Callable[[Eui64, Eui64, int, bytes], bool]
#: One command to deliver: ``(device, originator, counter, bytes)``.
Outgoing = tuple[Eui64, Eui64, int, bytes]


@runtime_checkable
class BatchDeliver(Protocol):
    """A ``Deliver`` that also takes a whole batch at once (see the module docstring)."""

    def __call__(self, device: Eui64, party: Eui64, counter: int, message: bytes) -> bool: ...

    def deliver_many(self, commands: Sequence[Outgoing]) -> list[bool]:
        """One verdict per command, in order: accepted by the network or not."""
        ...


def deliver_all(deliver: Deliver, commands: Sequence[Outgoing]) -> list[bool]:
    """Hands ``commands`` to ``deliver``: in one call if it is a :class:`BatchDeliver`."""
    if isinstance(deliver, BatchDeliver):
        verdicts = deliver.deliver_many(commands)
        if len(verdicts) != len(commands):
            raise ValueError("deliver_many must answer once per command")
        return verdicts
    return [deliver(*command) for command in commands]


class ReturnFault(StrEnum):
    """What happens to a meter's answer on its way back."""

    LOST = "lost"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "signature damaged"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Meter faults by rate, reproducible from ``seed`` (see the module docstring).

    ``bad_signature`` is the rate of answers whose last byte (inside the
    signature) is flipped, on top of :class:`MeterFaults`' exclusive rates.
    """

    faults: MeterFaults = field(default_factory=MeterFaults)
    bad_signature: float = 0.0
    rejected: float = 0.0
    """Rate of CS02b commands answered with statusCode ``other`` (module docstring),
    drawn for commands that meet no fault of :class:`MeterFaults`."""
    seed: int = 0
    originators: frozenset[Eui64] | None = None
    """Only commands from these parties meet faults (None: every command)."""
    devices: frozenset[Eui64] | None = None
    """Only these meters meet faults (None: every meter)."""

    def applies(self, device: Eui64, party: Eui64) -> bool:
        return (self.originators is None or party in self.originators) and (
            self.devices is None or device in self.devices
        )

    def __post_init__(self) -> None:
        if not 0.0 <= self.bad_signature <= 1.0 or not 0.0 <= self.rejected <= 1.0:
            raise ValueError("bad_signature and rejected are probabilities")

    def roll(self, device: Eui64, party: Eui64, counter: int, salt: bytes = b"") -> float:
        data = (
            self.seed.to_bytes(16, "big", signed=True)
            + device.value
            + party.value
            + counter.to_bytes(8, "big")
            + salt
        )
        digest = hashlib.blake2b(data, digest_size=8, person=b"openecos-faults").digest()
        return int.from_bytes(digest, "big") / float(1 << 64)

    def fault(self, device: Eui64, party: Eui64, counter: int) -> MeterFault | None:
        """The fault drawn for the command ``(party, counter)`` to ``device``."""
        if not self.applies(device, party):
            return None
        return self.faults.draw(self.roll(device, party, counter))

    def rejects(self, device: Eui64, party: Eui64, counter: int) -> bool:
        """Whether the meter answers the command ``(party, counter)`` with ``other``."""
        return (
            self.rejected > 0.0
            and self.applies(device, party)
            and self.roll(device, party, counter, b"rejected") < self.rejected
        )

    def return_leg(self, output: SimulatedOutput) -> tuple[bytes | None, ReturnFault | None]:
        """The answer as the engine receives it (``None``: lost), and the fault applied."""
        fault = self.fault(output.device, output.recipient, output.originator_counter)
        message = output.message
        if fault is MeterFault.NO_RESPONSE:
            return None, ReturnFault.LOST
        if fault is MeterFault.MALFORMED_RESPONSE and len(message) > 1:
            share = self.roll(output.device, output.recipient, output.originator_counter, b"cut")
            cut = 1 + int(share * (len(message) - 1))
            return message[:cut], ReturnFault.TRUNCATED
        salt = b"signature"
        if (
            self.bad_signature
            and self.applies(output.device, output.recipient)
            and (
                self.roll(output.device, output.recipient, output.originator_counter, salt)
                < self.bad_signature
            )
        ):
            return message[:-1] + bytes([message[-1] ^ 0x01]), ReturnFault.BAD_SIGNATURE
        return message, None


NO_FAULTS = FaultPlan()


class EstateDelivery:
    """Delivers commands to the persistent estate at once, with the plan's faults.

    Callable as the engine's ``Deliver``: ``(device, originator, counter, bytes)``;
    returns False when the network could not deliver (no such meter on it, or a
    meter broken for good), True when the meter got the command or lost it itself.
    """

    def __init__(self, estate: SimulatedEstate, clock: Clock, plan: FaultPlan = NO_FAULTS) -> None:
        self.estate = estate
        self.clock = clock
        self.plan = plan

    def __call__(self, device: Eui64, party: Eui64, counter: int, message: bytes) -> bool:
        now: datetime = self.clock.now()
        fault = self.plan.fault(device, party, counter)
        if fault is MeterFault.BROKEN:
            self.estate.break_meter(device, now)
            return True  # it broke on receipt: the command is simply never answered
        if fault is MeterFault.REBOOT:
            return self.estate.reboot(device, now) is not None
        if fault is None and self.plan.rejects(device, party, counter):
            profile = self.estate.profile
            react = partial(_answer_other, message=message, now=now, profile=profile)
            return self.estate.deliver_with(device, now, react) is not None
        transition = self.estate.deliver(device, message, now, busy=fault is MeterFault.BUSY)
        return transition is not None


def _answer_other(
    state: MeterState, *, message: bytes, now: datetime, profile: MeterProfile
) -> Transition:
    """The meter's busy answer (authenticated, nothing changed) with every cell ``other``."""
    transition = handle(state, message, now, profile, busy=True)
    outputs = tuple(_as_other(state, o, profile) for o in transition.outputs)
    return replace(transition, outputs=outputs)


def _as_other(state: MeterState, output: MeterOutput, profile: MeterProfile) -> MeterOutput:
    frame = decode_frame(output.message)
    content = decode_payload(frame)
    if not isinstance(content, UpdateSecurityCredentialsResponse):
        return output
    outcome = content.execution_outcome
    if outcome is None:
        return output
    other = tuple(replace(r, status_code=StatusCode.OTHER) for r in outcome.replacement_outcomes)
    return cs02b_response(
        state,
        profile,
        recipient=output.recipient,
        originator_counter=output.originator_counter,
        message_code=frame.apdu.message_code,
        outcome=replace(outcome, replacement_outcomes=other),
    )


__all__ = [
    "NO_FAULTS",
    "BatchDeliver",
    "Deliver",
    "EstateDelivery",
    "FaultPlan",
    "Outgoing",
    "ReturnFault",
    "deliver_all",
]
