"""The ETMAD regime's history and the approvals waiting for a change (schema migration 5).

Theory of operation. ``regime_changes`` is the history: one row per change
made (previous regime, event, new regime, when, who asked, the approvals it
consumed and the readiness evidence it rested on, as JSON). The current
regime is the latest row's; a store with no row runs in :data:`INITIAL_REGIME`
(the migration regime: both CoS Parties live, routed by credential state,
which is how the service has always run; an operator records a back-out to
run pre-go-live). ``regime_approvals`` holds approvals given for an event;
a change consumes those it used (``change_id`` set), so an approval counts
for one change only.

Writers serialise on :meth:`RegimeRepository.lock` (a transaction-scoped
advisory lock on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``), so two operators
changing the regime at once cannot both change it from the same state. The
audit log gets an entry for every approval and change, in the same
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, text, update

from openecos.migration.regime import (
    Approval,
    CriterionResult,
    ReadinessCheck,
    Regime,
    RegimeChange,
    RegimeEvent,
)
from openecos.store import schema
from openecos.store._base import Executor, Repository
from openecos.store.facade import Repositories, Store
from openecos.store.records import utc

_c, _a = schema.regime_changes, schema.regime_approvals

#: The regime of a store whose history is empty (see the module docstring).
INITIAL_REGIME = Regime.MIGRATION

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('openecos.regime:' || current_schema()))"


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """A row of the history."""

    change_id: int
    change: RegimeChange
    requested_by: str


@dataclass(frozen=True, slots=True)
class RecordedApproval:
    approval_id: int
    approval: Approval
    change_id: int | None


def approval_json(approval: Approval) -> dict[str, Any]:
    return {
        "approver": approval.approver,
        "at": approval.at.isoformat(),
        "reason": approval.reason,
        "event": approval.event.value,
    }


def readiness_json(readiness: ReadinessCheck) -> dict[str, Any]:
    return {
        "assessed_at": readiness.assessed_at.isoformat(),
        "results": [
            {"criterion": r.criterion, "met": r.met, "evidence": list(r.evidence)}
            for r in readiness.results
        ],
    }


def readiness_from_json(document: Any) -> ReadinessCheck:
    """A readiness check from its JSON form (raises KeyError/ValueError/TypeError if malformed)."""
    return ReadinessCheck(
        results=tuple(
            CriterionResult(str(r["criterion"]), bool(r["met"]), tuple(map(str, r["evidence"])))
            for r in document["results"]
        ),
        assessed_at=datetime.fromisoformat(str(document["assessed_at"])),
    )


def _approval(document: Any) -> Approval:
    return Approval(
        approver=document["approver"],
        at=datetime.fromisoformat(document["at"]),
        reason=document["reason"],
        event=RegimeEvent(document["event"]),
    )


def _change(row: Row[Any]) -> RecordedChange:
    return RecordedChange(
        int(row.change_id),
        RegimeChange(
            previous=Regime(row.previous),
            event=RegimeEvent(row.event),
            regime=Regime(row.regime),
            at=row.at,
            approvals=tuple(_approval(a) for a in row.approvals),
            readiness=None if row.readiness is None else readiness_from_json(row.readiness),
        ),
        row.requested_by,
    )


class RegimeRepository(Repository):
    """The regime history and pending approvals."""

    __slots__ = ()

    def lock(self) -> None:
        """Serialises regime writers until the caller's transaction ends."""
        with self._db.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(_LOCK))

    def current(self) -> Regime:
        with self._db.read() as conn:
            value = conn.execute(
                select(_c.c.regime).order_by(_c.c.change_id.desc()).limit(1)
            ).scalar()
        return INITIAL_REGIME if value is None else Regime(value)

    def history(self) -> list[RecordedChange]:
        with self._db.read() as conn:
            return [_change(r) for r in conn.execute(select(_c).order_by(_c.c.change_id))]

    def add_approval(self, approval: Approval) -> int:
        with self._db.write() as conn:
            return int(
                conn.execute(
                    insert(_a)
                    .values(
                        event=approval.event.value,
                        approver=approval.approver,
                        reason=approval.reason,
                        at=utc("at", approval.at),
                    )
                    .returning(_a.c.approval_id)
                ).scalar_one()
            )

    def pending(self, event: RegimeEvent | None = None) -> list[RecordedApproval]:
        """Approvals not yet consumed by a change (for ``event``, or all)."""
        query = select(_a).where(_a.c.change_id.is_(None)).order_by(_a.c.approval_id)
        if event is not None:
            query = query.where(_a.c.event == event.value)
        with self._db.read() as conn:
            return [
                RecordedApproval(
                    int(r.approval_id),
                    Approval(r.approver, r.at, r.reason, RegimeEvent(r.event)),
                    None,
                )
                for r in conn.execute(query)
            ]

    def record(self, change: RegimeChange, *, requested_by: str, approval_ids: list[int]) -> int:
        """Appends ``change`` to the history and marks ``approval_ids`` consumed by it."""
        with self._db.write() as conn:
            change_id = int(
                conn.execute(
                    insert(_c)
                    .values(
                        previous=change.previous.value,
                        event=change.event.value,
                        regime=change.regime.value,
                        at=utc("at", change.at),
                        requested_by=requested_by,
                        approvals=[approval_json(a) for a in change.approvals],
                        readiness=None
                        if change.readiness is None
                        else readiness_json(change.readiness),
                    )
                    .returning(_c.c.change_id)
                ).scalar_one()
            )
            if approval_ids:
                conn.execute(
                    update(_a).where(_a.c.approval_id.in_(approval_ids)).values(change_id=change_id)
                )
        return change_id


def bound_regimes(tx: Repositories) -> RegimeRepository:
    """The repository in the transaction ``tx`` already runs (its one Executor)."""
    return RegimeRepository(tx.audit._db)


def regime_repository(store: Store) -> RegimeRepository:
    """The repository with a transaction of its own per call."""
    return RegimeRepository(Executor(store.engine))


__all__ = [
    "INITIAL_REGIME",
    "RecordedApproval",
    "RecordedChange",
    "RegimeRepository",
    "approval_json",
    "bound_regimes",
    "readiness_from_json",
    "readiness_json",
    "regime_repository",
]
