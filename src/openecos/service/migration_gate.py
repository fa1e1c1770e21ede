"""What the CoS worker asks of the migration for each 6.23: wait, route, or refuse.

Theory of operation. Change of supplier carries on throughout migration
(issue 4 item 4). For a 6.23 the CoS worker has accepted (every check passed):

- *wait*: if the meter's 0x0106 or its credentials read is out, or its
  outcome is being established (:data:`~openecos.store.migration.MIGRATION_IN_FLIGHT`),
  the request is not refused but waits (:class:`WaitForMigration`; its work
  item is retried after :attr:`MigrationGate.wait`): only the outcome says
  which party's key the meter trusts. The worker asks before its checks
  (:meth:`MigrationGate.must_wait`) and again in the transaction that records
  its command (:meth:`MigrationGate.waiting_in`), so a migration that started
  in between is seen; a 0x0106 is credential-changing, so the database's
  one-in-flight index refuses the 6.23's command in the remaining race, which
  the worker also turns into a wait (:meth:`MigrationGate.blocked_by_migration`);
- *route*: :func:`openecos.migration.route_update` with the current regime
  and the meter's credential state (read at the decision, so after a
  migration the 6.23 is signed by the ECoS Party);
- *refuse*: the regime refuses the 6.23 (TCoS retired and the meter still on
  TCoS; ECoS not live and the meter on ECoS): the worker answers the
  refusal's code and :meth:`MigrationGate.strand` raises the meter to the
  exceptions queue for recovery.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from openecos.cos.routing import CosParties, CosParty
from openecos.errors import OpenEcosError
from openecos.eui import Eui64
from openecos.migration import Regime, RoutingConfig, route_update
from openecos.migration.errors import UpdateRefused
from openecos.service.migration_regime import raise_stranded
from openecos.service.migration_settings import PolicyCache
from openecos.store import Device, Repositories, Store
from openecos.store.migration import bound, migration_repository
from openecos.store.migration_regime import regime_repository


class WaitForMigration(OpenEcosError):
    """A 6.23 for a meter whose migration is in flight: retry the request later."""

    def __init__(self, device: Eui64) -> None:
        super().__init__(f"the migration of {device} is in flight; the 6.23 waits for it")
        self.device = device


class MigrationGate:
    """The worker's view of the migration (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        routing: RoutingConfig | None = None,
        wait: timedelta = timedelta(seconds=1),
        regime_ttl: float = 1.0,
    ) -> None:
        self.store = store
        self.routing = routing or RoutingConfig()
        self.wait = wait
        self.regime_ttl = regime_ttl
        self._mig = migration_repository(store)
        self._regimes = regime_repository(store)
        self._policy = PolicyCache(store)
        self._regime: Regime | None = None
        self._read_at = 0.0

    def regime(self) -> Regime:
        """The current regime (re-read at most every ``regime_ttl`` seconds)."""
        if self._regime is None or time.monotonic() - self._read_at > self.regime_ttl:
            self._regime = self._regimes.current()
            self._read_at = time.monotonic()
        return self._regime

    def must_wait(self, device: Eui64) -> bool:
        return self._mig.migration_in_flight(device)

    def waiting_in(self, tx: Repositories, device: Eui64) -> bool:
        """:meth:`must_wait`, inside the transaction that records the 6.23's command."""
        return bound(tx).migration_in_flight(device)

    def blocked_by_migration(self, device: Eui64) -> bool:
        """After the one-in-flight index refused a 6.23's command: was it a migration's?"""
        return self.must_wait(device)

    def route(self, device: Device, parties: CosParties) -> CosParty:
        """The signing party; raises :class:`~openecos.migration.UpdateRefused`."""
        decision = route_update(self.regime(), device.credential_state, self.routing)
        return decision.party(parties)

    def strand(self, device: Device, *, request_id: str, at: datetime) -> None:
        """Raises the meter of a 6.23 the regime refused to the exceptions queue."""
        decision = route_update(self.regime(), device.credential_state, self.routing)
        if decision.signer is not None or not decision.raise_exception:
            return
        with self.store.transaction() as tx:
            raise_stranded(
                tx,
                device.eui,
                decision=decision,
                request_id=request_id,
                at=at,
                policy=self._policy(),
            )


__all__ = ["MigrationGate", "UpdateRefused", "WaitForMigration"]
