"""ETMAD regimes at runtime: approvals, changes with readiness evidence, and 6.23 routing.

Theory of operation. :class:`RegimeDesk` records an approval (who, when,
why, for which change) and makes a change only through
:func:`openecos.migration.change_regime`, with the approvals recorded for that
event and not yet used and the readiness evidence given, in one transaction
that serialises regime writers and appends the change, marks the approvals
used and writes the audit log (:mod:`openecos.store.migration_regime`). A
refused change raises :class:`~openecos.migration.RegimeChangeRefused`
naming what is missing and records nothing.

Retiring TCoS (the enduring regime) strands meters still on TCoS: their
migration rows are made due at once so the engine raises each as an exception
for recovery (:func:`openecos.migration.tcos_retired`); a 6.23 refused by the
regime raises its meter the same way at once (:func:`raise_stranded`).

:func:`route_6_23` is what the CoS worker asks for each 6.23 it accepted:
:func:`openecos.migration.route_update` with the current regime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from openecos.eui import Eui64
from openecos.migration import (
    Approval,
    EmehraPolicy,
    MigrationStatus,
    ReadinessCheck,
    Regime,
    RegimeChange,
    RegimeChangePolicy,
    RegimeEvent,
    RoutingConfig,
    RoutingDecision,
    change_regime,
    route_update,
    tcos_retired,
)
from openecos.migration.errors import IllegalTransition
from openecos.service.clock import Clock
from openecos.store import CosCredentialState, Repositories, Store, schema
from openecos.store.migration import bound, migration_transaction
from openecos.store.migration_regime import (
    RecordedApproval,
    RecordedChange,
    approval_json,
    bound_regimes,
    readiness_json,
    regime_repository,
)

ACTOR = "regime"


@dataclass(frozen=True, slots=True)
class RegimeView:
    """The current regime, its history and the approvals waiting."""

    regime: Regime
    history: tuple[RecordedChange, ...]
    pending: tuple[RecordedApproval, ...]


class RegimeDesk:
    """Approvals and changes of the regime (see the module docstring)."""

    def __init__(self, store: Store, clock: Clock, policy: RegimeChangePolicy | None = None):
        self.store = store
        self.clock = clock
        self.policy = policy or RegimeChangePolicy()

    def view(self) -> RegimeView:
        repo = regime_repository(self.store)
        return RegimeView(repo.current(), tuple(repo.history()), tuple(repo.pending()))

    def current(self) -> Regime:
        return regime_repository(self.store).current()

    def approve(self, event: RegimeEvent, *, approver: str, reason: str) -> RecordedApproval:
        now = self.clock.now()
        approval = Approval(approver=approver, at=now, reason=reason, event=event)
        with migration_transaction(self.store) as mtx:
            repo = bound_regimes(mtx.repos)
            repo.lock()
            approval_id = repo.add_approval(approval)
            mtx.repos.audit.append(
                at=now,
                actor=approver,
                action="regime.approved",
                subject=f"regime:{event.value}",
                details={"approval_id": approval_id, **approval_json(approval)},
            )
        return RecordedApproval(approval_id, approval, None)

    def change(
        self,
        event: RegimeEvent,
        *,
        requested_by: str,
        readiness: ReadinessCheck | None = None,
    ) -> RegimeChange:
        """Makes the change or raises :class:`~openecos.migration.RegimeChangeRefused`."""
        now = self.clock.now()
        with migration_transaction(self.store) as mtx:
            repo = bound_regimes(mtx.repos)
            repo.lock()
            current = repo.current()
            pending = repo.pending(event)
            change = change_regime(
                current,
                event,
                approvals=tuple(p.approval for p in pending),
                at=now,
                readiness=readiness,
                policy=self.policy,
            )
            change_id = repo.record(
                change, requested_by=requested_by, approval_ids=[p.approval_id for p in pending]
            )
            mtx.repos.audit.append(
                at=now,
                actor=requested_by,
                action="regime.changed",
                subject=f"regime:{event.value}",
                details={
                    "change_id": change_id,
                    "from": change.previous.value,
                    "to": change.regime.value,
                    "approvals": [approval_json(a) for a in change.approvals],
                    "readiness": None if readiness is None else readiness_json(readiness),
                },
            )
            if change.regime is Regime.ENDURING:
                # Make every meter that may still be on TCoS due: the engine raises each.
                mm = schema.migration_meters
                mtx.connection.execute(
                    update(mm)
                    .where(
                        mm.c.status.in_(
                            [
                                MigrationStatus.INELIGIBLE.name,
                                MigrationStatus.ELIGIBLE.name,
                                MigrationStatus.RETRY_WAIT.name,
                            ]
                        ),
                        mm.c.credentials != "ECOS",
                    )
                    .values(next_at=now)
                )
        return change


def route_6_23(
    regime: Regime, state: CosCredentialState, config: RoutingConfig | None = None
) -> RoutingDecision:
    """How the regime handles a 6.23 for a meter in ``state`` (pure; see routing.py)."""
    return route_update(regime, state, config)


def raise_stranded(
    tx: Repositories,
    device: Eui64,
    *,
    decision: RoutingDecision,
    request_id: str,
    at: datetime,
    policy: EmehraPolicy,
) -> None:
    """A 6.23 refused by the regime: the meter goes to the exceptions queue for recovery."""
    mig = bound(tx)
    record = mig.lock(device)
    moved = False
    if record is not None:
        try:
            after = tcos_retired(record, at, policy)
        except IllegalTransition:
            after = record  # a command or read is out: its answer or deadline comes first
        if after is not record:
            mig.save(after)
            moved = True
    tx.audit.append(
        at=at,
        actor=ACTOR,
        action="migration.stranded",
        subject=device.hex,
        details={
            "request_id": request_id,
            "refusal": None if decision.refusal is None else decision.refusal.name,
            "response_code": None
            if decision.response_code is None
            else decision.response_code.value,
            "exception_raised": moved,
        },
    )


__all__ = ["RegimeDesk", "RegimeView", "raise_stranded", "route_6_23"]
