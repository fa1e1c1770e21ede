"""What operators do with migration: run control, settings, the exceptions queue, figures.

Theory of operation. :class:`MigrationDesk` is the one entry point the CLI and
the HTTP API share. Every change is one transaction that also writes the
audit log (who, what, why):

- run control (:meth:`MigrationDesk.control`): start, pause, resume, drain,
  stop, through :func:`openecos.migration.next_run_state` (an event the table
  does not allow raises :class:`~openecos.migration.IllegalTransition`);
- settings (:meth:`MigrationDesk.update_settings`): capacity, order, the
  approved list, timings. Approving a model makes the meters held back only
  for their model or firmware due for reassessment at once;
- the exceptions queue (:meth:`MigrationDesk.exceptions`) and operator actions
  (:meth:`MigrationDesk.act`: retry now, hold, release, field visit, resolve),
  through :func:`openecos.migration.operator_action`; resolving a meter as
  migrated (after a field visit confirmed the ECoS certificate) flips the
  inventory like a confirmed answer does;
- status (:meth:`MigrationDesk.status`): counts by status, run state, rate over
  the trailing hour and the ETA at that rate;
- EMRR (:meth:`MigrationDesk.emrr`): counts by the party registered for each
  meter's MPxN now (the counters on PostgreSQL, a recount on SQLite:
  :mod:`openecos.store.migration_report`), then
  :func:`openecos.migration.report_from_counts` (a supplier's report holds its
  meters only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import update

from openecos.eui import Eui64
from openecos.migration import (
    EmrrReport,
    IneligibleReason,
    MeterMigration,
    MigrationStatus,
    OperatorAction,
    RunEvent,
    operator_action,
    report_from_counts,
    suppliers_of,
)
from openecos.service.clock import Clock
from openecos.service.migration_answers import (
    audit_entry,
    close_command,
    flip_to_ecos,
    transition_details,
)
from openecos.service.migration_identities import MigrationIdentities
from openecos.service.migration_settings import (
    RUN_DOCUMENT,
    MigrationSettings,
    RunControl,
    read_run,
    read_settings,
    write_run,
    write_settings,
)
from openecos.store import CommandStatus, NotFound, Store, schema
from openecos.store.migration import (
    MIGRATION_IN_FLIGHT,
    migration_repository,
    migration_transaction,
)

_S = MigrationStatus
#: The exceptions queue: meters waiting for an operator.
EXCEPTION_STATUSES = frozenset({_S.EXCEPTION, _S.HELD, _S.FIELD_VISIT})
#: The rate behind the ETA is measured over this trailing window.
RATE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """What ``openecos migrate status`` shows."""

    at: datetime
    run: RunControl
    settings: MigrationSettings
    counts: dict[MigrationStatus, int]
    rate_per_hour: float
    """Confirmed migrations over the trailing :data:`RATE_WINDOW`, per hour."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def migrated(self) -> int:
        return self.counts.get(_S.MIGRATED, 0)

    @property
    def remaining(self) -> int:
        """Meters still to migrate: neither migrated nor ineligible."""
        return self.total - self.migrated - self.counts.get(_S.INELIGIBLE, 0)

    @property
    def eta(self) -> datetime | None:
        """When the remaining meters are done at the trailing rate (None: rate zero)."""
        if self.remaining == 0:
            return self.at
        if self.rate_per_hour <= 0:
            return None
        return self.at + timedelta(hours=self.remaining / self.rate_per_hour)


class MigrationDesk:
    """Operators' entry point (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        identities: MigrationIdentities | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.identities = identities

    # -- run control --------------------------------------------------------------------------

    def control(self, event: RunEvent, *, actor: str, note: str = "") -> RunControl:
        now = self.clock.now()
        with self.store.transaction() as tx:
            run = read_run(tx)
            moved = run.moved(event, actor=actor, at=now)
            write_run(tx, moved, at=now)
            tx.audit.append(
                at=now,
                actor=actor,
                action="migration.run",
                subject=RUN_DOCUMENT,
                details={
                    "event": event.value,
                    "from": run.state.value,
                    "to": moved.state.value,
                    "note": note,
                },
            )
        return moved

    def run_state(self) -> RunControl:
        with self.store.transaction() as tx:
            return read_run(tx)

    # -- settings -----------------------------------------------------------------------------

    def settings(self) -> MigrationSettings:
        with self.store.transaction() as tx:
            return read_settings(tx)

    def update_settings(
        self,
        change: Callable[[MigrationSettings], MigrationSettings],
        *,
        actor: str,
        what: str,
    ) -> MigrationSettings:
        """Applies ``change`` to the stored settings under their lock; audit-logged."""
        now = self.clock.now()
        with migration_transaction(self.store) as mtx:
            before = read_settings(mtx.repos)
            after = change(before)
            write_settings(mtx.repos, after, actor=actor, at=now, what=what)
            if after.approved != before.approved or after.device_types != before.device_types:
                # Held back only by the list: reassess now rather than at the next interval.
                mm = schema.migration_meters
                mtx.connection.execute(
                    update(mm)
                    .where(
                        mm.c.status == _S.INELIGIBLE.name,
                        mm.c.ineligible.in_(
                            [
                                IneligibleReason.MODEL_NOT_APPROVED.name,
                                IneligibleReason.FIRMWARE_NOT_APPROVED.name,
                                IneligibleReason.DEVICE_TYPE.name,
                            ]
                        ),
                    )
                    .values(next_at=now)
                )
        return after

    # -- the exceptions queue -----------------------------------------------------------------

    def exceptions(self, *, after: Eui64 | None = None, limit: int = 100) -> list[MeterMigration]:
        return migration_repository(self.store).find(EXCEPTION_STATUSES, after=after, limit=limit)

    def meter(self, device: Eui64) -> MeterMigration:
        record = migration_repository(self.store).get(device)
        if record is None:
            raise NotFound(f"no migration record for {device}")
        return record

    def act(
        self,
        device: Eui64,
        action: OperatorAction,
        *,
        actor: str,
        note: str,
        ineligible: IneligibleReason | None = None,
    ) -> MeterMigration:
        """An operator action (IllegalTransition if the meter's status does not allow it)."""
        now = self.clock.now()
        with migration_transaction(self.store) as mtx:
            record = mtx.mig.lock(device)
            if record is None:
                raise NotFound(f"no migration record for {device}")
            policy = read_settings(mtx.repos).policy.policy()
            after = operator_action(
                record,
                action,
                actor=actor,
                note=note,
                at=now,
                policy=policy,
                ineligible=ineligible,
            )
            if after.status is _S.MIGRATED:
                if self.identities is None:
                    raise NotFound("resolving as migrated needs the ECoS credential (identities)")
                flip_to_ecos(mtx.repos, self.identities, device)
                close_command(
                    mtx.repos,
                    self.identities.tcos,
                    record.command_counter,
                    CommandStatus.SUCCEEDED,
                    now,
                )
            mtx.mig.save(after)
            entry = audit_entry(
                now,
                "migration.operator",
                device,
                operator_action=action.name,
                note=note,
                **transition_details(record, after),
            )
            entry["actor"] = actor
            mtx.mig.audit_many([entry])
        return after

    # -- figures ------------------------------------------------------------------------------

    def status(self) -> MigrationProgress:
        now = self.clock.now()
        repo = migration_repository(self.store)
        with self.store.transaction() as tx:
            run = read_run(tx)
            settings = read_settings(tx)
        counts = repo.counts_by_status()
        recent = repo.migrated_since(now - RATE_WINDOW)
        rate = recent / (RATE_WINDOW.total_seconds() / 3600)
        return MigrationProgress(now, run, settings, counts, rate)

    def in_flight(self) -> int:
        return migration_repository(self.store).count(MIGRATION_IN_FLIGHT)

    def emrr(
        self, *, supplier: str | None = None, as_of: date | None = None, window_days: int = 7
    ) -> EmrrReport:
        """One report: overall, or the meters ``supplier`` (a party ID) is registered for now."""
        return self.emrr_reports(suppliers=(supplier,), as_of=as_of, window_days=window_days)[0]

    def emrr_reports(
        self,
        *,
        suppliers: tuple[str | None, ...] | None = None,
        as_of: date | None = None,
        window_days: int = 7,
    ) -> list[EmrrReport]:
        """Reports for ``suppliers`` (None in the tuple: overall); default: overall + each."""
        now = self.clock.now()
        repo = migration_repository(self.store)
        rows, daily = repo.report_rows(now)
        day = as_of or now.date()
        scopes = suppliers if suppliers is not None else (None, *suppliers_of(rows))
        return [
            report_from_counts(rows, daily, as_of=day, supplier=s, window_days=window_days)
            for s in scopes
        ]


__all__ = ["EXCEPTION_STATUSES", "RATE_WINDOW", "MigrationDesk", "MigrationProgress"]
