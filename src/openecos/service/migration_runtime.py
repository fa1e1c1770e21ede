"""The migration engine inside a service process: answers dispatched, engine in the loop.

Theory of operation. The service's response processor takes the meters'
outputs oldest first, whatever they answer; :class:`MigrationAwareResponses`
hands those that answer a migration command (a 0x0106 to the TCoS Party, a
CS02a read to the Access Control Broker) to
:class:`~openecos.service.migration_answers.MigrationAnswers`, in the same
transaction that consumed them, and everything else to the 6.23 path as
before. So a service process applies every answer exactly once, whichever
process sent the command (``openecos serve`` workers or ``openecos migrate
run``).

:class:`PolicyCache` reads the EMEHRA timings from the stored settings at
most every few seconds, so the answers of every process follow the policy
operators set. :func:`wan_deliver` adapts the simulated WAN's ``send`` (which
returns at once; loss and faults show later as silence) to the engine's
``Deliver``.
"""

from __future__ import annotations

from datetime import datetime

from openecos.cos.outcomes import OutcomeConfig
from openecos.eui import Eui64
from openecos.service.clock import Clock
from openecos.service.identities import ServiceKeys
from openecos.service.migration_answers import MigrationAnswers
from openecos.service.migration_engine import Deliver
from openecos.service.migration_settings import PolicyCache
from openecos.service.responses import ResponseProcessor
from openecos.service.worker import Send
from openecos.store import Repositories, SimulatedOutput, Store


class MigrationAwareResponses(ResponseProcessor):
    """The service's response processor, with migration answers dispatched (module doc)."""

    def __init__(
        self,
        store: Store,
        keys: ServiceKeys,
        clock: Clock,
        answers: MigrationAnswers,
        *,
        config: OutcomeConfig | None = None,
    ) -> None:
        super().__init__(store, keys, clock, config=config)
        self.answers = answers

    def _apply(self, tx: Repositories, output: SimulatedOutput, now: datetime) -> None:
        if self.answers.handles(tx, output):
            self.answers.apply(tx, output, now)
            return
        super()._apply(tx, output, now)


def wan_deliver(send: Send) -> Deliver:
    """The engine's ``Deliver`` over a fire-and-forget ``send`` (the WAN)."""

    def deliver(device: Eui64, _originator: Eui64, _counter: int, message: bytes) -> bool:
        send(device, message)
        return True

    return deliver


__all__ = ["MigrationAwareResponses", "PolicyCache", "wan_deliver"]
