"""The migration engine: TCoS → ECoS, meter by meter, under run control and capacity.

Theory of operation. :meth:`MigrationEngine.step` does, once, everything that
is due, each piece a claim of due rows of ``migration_meters``
(:mod:`openecos.store.migration`: ``FOR UPDATE SKIP LOCKED`` and leases, so any
number of engine processes share the work and a killed one's rows are taken
over when their lease runs out):

1. *enrol*: inventory devices queued on insert (:mod:`openecos.store.enrolment`)
   get a row, from :func:`openecos.migration.assess` (eligible, or ineligible
   with the reason EMRR counts), and an EMRR attribution to their registered
   supplier; born-ECoS meters are ineligible (BORN_ECOS, on ECoS) from
   day one and are never sent anything; every ``emrr_every`` the EMRR
   attribution is brought to now and the counter ledger folded;
2. *reassess* ineligible rows whose ``next_at`` has come;
3. *answers*: meters' answers to 0x0106 and CS02a (:mod:`.migration_answers`);
4. *time-outs*: a command or read unanswered by its deadline
   (:func:`~openecos.migration.response_timed_out`,
   :func:`~openecos.migration.read_timed_out`); one still Prepared (the engine
   died between recording and sending it) is resent with the same bytes;
5. *reads*: outcomes in doubt get a CS02a read of the transitionalCoS cell;
6. *starts*: only when the regime is ``migration`` and the run state is
   ``running``, within the capacity left this UTC day and hour and in flight
   (:func:`~openecos.migration.headroom`), in the configured order: claim,
   assess again (fresh inventory), reserve a block of TCoS counters durably,
   build, sign and MAC each 0x0106 (``[4]`` = the ECoS counter high-water mark)
   through the key handles, record command and ``IN_FLIGHT`` in one
   transaction, send, mark Sent;
7. *drain*: ``draining`` with nothing in flight becomes ``stopped``.

Paused, draining and stopped start nothing new but still finish what is in
flight (answers, time-outs, reads): a command cannot be unsent.

Exclusion with 6.23. A 0x0106 is recorded credential-changing, so the
database's one-in-flight index (``uq_commands_in_flight``) makes it and a 6.23
command exclusive. One case differs: a meter holding a future-dated 6.23
(AwaitingExecution) may be migrated (the meter keeps and later executes the
held command, device/machine.py); its 0x0106 is then recorded
non-credential-changing, inside a transaction that locks the held command, and
the CoS worker also checks the migration row (a 6.23 for a meter whose
migration is in flight waits, :mod:`openecos.service.worker`).

Crash safety: a row is claimed before anything happens to it; a counter is
committed before any signature exists; a command and the row's ``IN_FLIGHT``
are committed together before the bytes leave; so a process killed anywhere
leaves each meter in a named status with a next action and time, and at worst
a skipped counter or a Prepared command that the time-out step resends
identically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from openecos.gbcs.codes import KeyUsage
from openecos.migration import (
    EcosCredential,
    Eligibility,
    IneligibleReason,
    MeterMigration,
    MigrationCommandConfig,
    MigrationCommandTemplate,
    MigrationStatus,
    OrderField,
    Regime,
    RunEvent,
    RunState,
    assess,
    command_sent,
    headroom,
    migration_may_run,
    new_record,
    reassess,
    tcos_retired,
)
from openecos.migration.command import MESSAGE_CODE
from openecos.migration.planning import CapacityUsage
from openecos.service.clock import Clock
from openecos.service.migration_answers import (
    MigrationAnswers,
    audit_entry,
    transition_details,
)
from openecos.service.migration_delivery import NO_FAULTS, FaultPlan
from openecos.service.migration_identities import MigrationIdentities
from openecos.service.migration_keys import MigrationDeviceKeys, prefetch_keys
from openecos.service.migration_recovery import Deliver, RecoverySteps
from openecos.service.migration_settings import (
    MigrationSettings,
    load_settings,
    read_run,
    write_run,
)
from openecos.service.worker import DeviceKeyDirectory
from openecos.store import (
    CommandInFlight,
    CommandRecord,
    CommandStatus,
    NotFound,
    Store,
    emrr,
    enrolment,
    schema,
)
from openecos.store.migration import (
    MIGRATION_IN_FLIGHT,
    ON_THE_WIRE,
    WIRE_COMMAND_STATUSES,
    MigrationClaim,
    MigrationTx,
    device_of,
    migration_repository,
    migration_transaction,
    reserve_counters,
    retry_first,
)
from openecos.store.migration_regime import regime_repository

log = logging.getLogger(__name__)
_S = MigrationStatus

#: Where :attr:`EngineConfig.crash_at` can kill the process (crash tests).
CRASH_POINTS = frozenset({"after-claim", "after-reserve", "after-prepare", "after-send"})


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How one engine process works (the shared configuration is :class:`MigrationSettings`)."""

    batch: int = 64
    answers_batch: int = 256
    """Meters' answers applied per transaction (each step applies one such batch)."""
    lease: timedelta = timedelta(seconds=30)
    enrol_batch: int = 5_000
    emrr_every: timedelta = timedelta(seconds=60)
    """How often to bring EMRR attribution to now and fold the counter ledger."""
    command: MigrationCommandConfig = field(default_factory=MigrationCommandConfig)
    plan: FaultPlan = NO_FAULTS
    crash_at: str | None = None


class MigrationEngine(RecoverySteps):
    """See the module docstring. One per process (or thread); many may share a store."""

    def __init__(
        self,
        store: Store,
        identities: MigrationIdentities,
        clock: Clock,
        deliver: Deliver,
        *,
        worker_id: str,
        config: EngineConfig | None = None,
        device_keys: DeviceKeyDirectory | None = None,
    ) -> None:
        self.store = store
        self.identities = identities
        self.clock = clock
        self.deliver = deliver
        self.worker_id = worker_id
        self.config = config or EngineConfig()
        self.device_keys = device_keys or MigrationDeviceKeys(store)
        self.mig = migration_repository(store)
        self.regimes = regime_repository(store)
        self._settings = MigrationSettings()
        self.answers = MigrationAnswers(
            store,
            identities,
            lambda: self._settings.policy.policy(),
            plan=self.config.plan,
            device_keys=self.device_keys,
        )
        self._emrr_due: datetime | None = None
        self._template: tuple[EcosCredential, MigrationCommandTemplate] | None = None

    # -- the loop -----------------------------------------------------------------------------

    def settings(self) -> MigrationSettings:
        self._settings = load_settings(self.store)
        return self._settings

    def step(self) -> int:
        """Does everything due once (module docstring); returns how much work it did."""
        settings = self.settings()
        regime = self.regimes.current()
        done = self.enrol(settings, regime)
        self.emrr_upkeep()
        done += self.reassess_due(settings, regime)
        done += self.answers.process(self.clock.now(), limit=self.config.answers_batch)
        done += self.time_out_due(settings)
        done += self.read_due(settings)
        done += self.start_due(settings, regime)
        done += self.drain_if_idle()
        return done

    def run_until_idle(self, *, max_steps: int = 1_000_000) -> int:
        """Steps until a step finds nothing to do (tests, ``migrate run --once``)."""
        total = 0
        for _ in range(max_steps):
            done = self.step()
            total += done
            if not done:
                break
        return total

    def next_due(self) -> datetime | None:
        """When the next row becomes due (a virtual clock may jump there)."""
        return self.mig.next_due(
            {
                _S.INELIGIBLE,
                _S.ELIGIBLE,
                _S.RETRY_WAIT,
                _S.IN_FLIGHT,
                _S.OUTCOME_UNKNOWN,
                _S.READING_CREDENTIALS,
            }
        )

    # -- 1. enrolment -------------------------------------------------------------------------

    def enrol(self, settings: MigrationSettings, regime: Regime) -> int:
        """Gives up to ``enrol_batch`` queued inventory devices a migration row.

        The queue (:mod:`openecos.store.enrolment`) is filled by the database as
        devices are inserted, so nothing rescans the inventory; popping, assessing,
        attributing to the registered supplier (EMRR) and inserting the rows are one
        transaction, so a crash leaves the devices queued.
        """
        now = self.clock.now()
        policy = settings.policy.policy()
        with migration_transaction(self.store) as mtx:
            popped, rows = enrolment.take(mtx.connection, self.config.enrol_batch)
            if not popped:
                return 0
            devices = [device_of(r) for r in rows]
            wire = mtx.mig.commands_on_the_wire([d.eui for d in devices])
            records = []
            for device in devices:
                verdict = assess(
                    device,
                    command_in_flight=wire.get(device.eui) in WIRE_COMMAND_STATUSES,
                    approved=settings.approved,
                    config=settings.eligibility,
                )
                record = new_record(device.eui, verdict, now, policy)
                if regime is Regime.ENDURING:
                    record = tcos_retired(record, now, policy)
                records.append(record)
            # Before the rows: their INSERT trigger counts them under this supplier.
            emrr.attribute_devices(mtx.connection, [d.eui for d in devices], now)
            mtx.mig.insert_many(records)
        return popped

    def emrr_upkeep(self) -> None:
        """Every ``emrr_every``: EMRR attribution brought to now, the counter ledger folded.

        Registrations that begin or end with the calendar change nobody's row, so
        :func:`openecos.store.emrr.sync_attribution` moves those meters here (a report
        does it too); :func:`openecos.store.emrr.compact` keeps the ledger a row per key
        (PostgreSQL; one process at a time, the others skip). Housekeeping: not counted
        as work.
        """
        now = self.clock.now()
        if self._emrr_due is not None and now < self._emrr_due:
            return
        self._emrr_due = now + self.config.emrr_every
        self.mig.sync_attribution(now)
        if self.store.engine.dialect.name == "postgresql":
            with self.store.engine.begin() as conn:
                emrr.compact(conn)

    # -- 2. reassessment ----------------------------------------------------------------------

    def reassess_due(self, settings: MigrationSettings, regime: Regime) -> int:
        now = self.clock.now()
        statuses = {_S.INELIGIBLE}
        if regime is Regime.ENDURING:
            statuses |= {_S.ELIGIBLE, _S.RETRY_WAIT}
        claims = self.mig.claim(
            statuses, self.worker_id, now=now, lease=self.config.lease, limit=self.config.batch * 4
        )
        if not claims:
            return 0
        policy = settings.policy.policy()
        devices = self.mig.devices([c.record.device for c in claims])
        wire = self.mig.commands_on_the_wire(list(devices))
        with migration_transaction(self.store) as mtx:
            entries = []
            for claim in claims:
                record = claim.record
                device = devices.get(record.device)
                with mtx.savepoint():
                    after = record
                    if regime is Regime.ENDURING:
                        after = tcos_retired(record, now, policy)
                    if after is not record:
                        pass  # stranded on TCoS: an exception for recovery
                    elif device is None:
                        after = replace(record, next_at=now + policy.reassess_interval)
                    else:
                        verdict = assess(
                            device,
                            command_in_flight=wire.get(device.eui) in WIRE_COMMAND_STATUSES,
                            approved=settings.approved,
                            config=settings.eligibility,
                        )
                        after = reassess(record, verdict, now, policy)
                    self._save(mtx, after, claim)
                    if after.status is not record.status:
                        entries.append(
                            audit_entry(
                                now,
                                "migration.assessed",
                                record.device,
                                **transition_details(record, after),
                            )
                        )
            mtx.mig.audit_many(entries)
        return len(claims)

    # -- 6. starts ----------------------------------------------------------------------------

    def start_due(self, settings: MigrationSettings, regime: Regime) -> int:
        """Starts migrations within capacity (module docstring); returns rows claimed."""
        if not migration_may_run(regime):
            return 0
        now = self.clock.now()
        policy = settings.policy.policy()
        go: list[tuple[MigrationClaim, bool]] = []
        with migration_transaction(self.store) as mtx:
            run = read_run(mtx.repos)
            if run.state is not RunState.RUNNING:
                return 0
            usage = CapacityUsage(
                run.started_today(now), run.started_this_hour(now), mtx.mig.count(ON_THE_WIRE)
            )
            room = min(headroom(settings.capacity, usage), self.config.batch)
            if room == 0:
                return 0
            order, join = _sql_order(settings.order)
            claims = mtx.mig.claim(
                {_S.ELIGIBLE, _S.RETRY_WAIT},
                self.worker_id,
                now=now,
                lease=self.config.lease,
                limit=room,
                order=order,
                join_devices=join,
            )
            if not claims:
                return 0
            devices = mtx.mig.devices([c.record.device for c in claims])
            wire = mtx.mig.commands_on_the_wire(list(devices))
            entries = []
            for claim in claims:
                record = claim.record
                device = devices.get(record.device)
                in_flight = wire.get(record.device)
                verdict = (
                    assess(
                        device,
                        command_in_flight=in_flight in WIRE_COMMAND_STATUSES,
                        approved=settings.approved,
                        config=settings.eligibility,
                    )
                    if device is not None
                    else None
                )
                if verdict is None or not verdict.eligible:
                    after = (
                        reassess(record, verdict, now, policy)
                        if verdict is not None
                        else replace(record, next_at=now + policy.reassess_interval)
                    )
                    mtx.mig.save(after, claim=claim)
                    entries.append(
                        audit_entry(
                            now,
                            "migration.assessed",
                            record.device,
                            **transition_details(record, after),
                        )
                    )
                    continue
                go.append((claim, in_flight is CommandStatus.AWAITING_EXECUTION))
            write_run(mtx.repos, run.started(now, len(go)), at=now)
            mtx.mig.audit_many(entries)
        self._crash_point("after-claim")
        if go:
            self._start(go, now, policy)
        return len(go) or 1

    def _start(self, go: list[tuple[MigrationClaim, bool]], now: datetime, policy: Any) -> None:
        ids = self.identities
        # Durable BEFORE any signature exists; a crash from here on only skips values.
        counters = reserve_counters(self.store, ids.tcos, len(go))
        self._crash_point("after-reserve")
        # [4]: every counter the ECoS Party reserves later is above this (command.py).
        floor = self.store.signing_counters.last(ids.ecos) or 0
        template = self._command_template()
        # Both keys of every meter in one query: KA now, DS when it answers.
        prefetch_keys(self.device_keys, [claim.record.device for claim, _ in go])
        built: list[tuple[MigrationClaim, bool, CommandRecord]] = []
        for (claim, held), counter in zip(go, counters, strict=True):
            device = claim.record.device
            try:
                key = self.device_keys.public_key(device, KeyUsage.KEY_AGREEMENT)
            except NotFound:
                log.error("no KA certificate of %s: cannot command it", device)
                self.mig.release(claim)
                continue
            payload = template.build(
                device=device,
                originator_counter=counter,
                ecos_counter_floor=floor,
                signer=ids.tcos_signer,
                acb_key_agreement=ids.acb_key_agreement,
                device_key_agreement_key=key,
            )
            command = CommandRecord(
                signer=ids.tcos,
                originator_counter=counter,
                device=device,
                message_code=MESSAGE_CODE,
                payload=payload,
                created_at=now,
            )
            built.append((claim, held, command))
        out: list[CommandRecord] = []
        with migration_transaction(self.store) as mtx:
            mine = mtx.mig.still_claimed([claim for claim, _, _ in built])
            built = [b for b in built if b[0].record.device in mine]
            ready: list[tuple[MigrationClaim, CommandRecord, MeterMigration]] = []
            for claim, held, command in built:
                if held and mtx.mig.lock_held_command(claim.record.device):
                    # A held future-dated 6.23 stays on the meter; this 0x0106 must not be
                    # refused by the one-in-flight index (module docstring).
                    command = replace(command, credential_changing=False)
                after = command_sent(
                    claim.record, counter=command.originator_counter, at=now, policy=policy
                )
                ready.append((claim, command, after))
            try:
                with mtx.savepoint():
                    mtx.mig.record_starts([c for _, c, _ in ready], [a for _, _, a in ready])
                recorded = ready
            except IntegrityError:
                # A 6.23 command went out for one of them since it was assessed: one by one.
                recorded = self._record_one_by_one(mtx, ready, now, policy)
            entries = [
                audit_entry(
                    now,
                    "migration.command-sent",
                    command.device,
                    worker=self.worker_id,
                    counter=command.originator_counter,
                    floor=floor,
                    attempt=after.attempts,
                    credential_changing=command.credential_changing,
                )
                for _, command, after in recorded
            ]
            out = [command for _, command, _ in recorded]
            mtx.mig.audit_many(entries)
        self._crash_point("after-prepare")
        self._send(out, now)

    def _command_template(self) -> MigrationCommandTemplate:
        """The 0x0106 template for the identities' credential (made once; command.py)."""
        ids = self.identities
        template = self._template
        if template is None or template[0] is not ids.credential:
            made = MigrationCommandTemplate(
                ids.credential, tcos=ids.tcos, config=self.config.command
            )
            template = self._template = (ids.credential, made)
        return template[1]

    def _record_one_by_one(
        self,
        mtx: MigrationTx,
        ready: list[tuple[MigrationClaim, CommandRecord, MeterMigration]],
        now: datetime,
        policy: Any,
    ) -> list[tuple[MigrationClaim, CommandRecord, MeterMigration]]:
        recorded = []
        entries = []
        for claim, command, after in ready:
            record = claim.record
            try:
                with mtx.savepoint():
                    mtx.repos.commands.add(command)
                    mtx.mig.save(after)
                recorded.append((claim, command, after))
            except CommandInFlight:
                with mtx.savepoint():
                    busy = _busy_with_6_23(record, now, policy)
                    mtx.mig.save(busy)
                    entries.append(
                        audit_entry(
                            now,
                            "migration.assessed",
                            record.device,
                            **transition_details(record, busy),
                        )
                    )
        mtx.mig.audit_many(entries)
        return recorded

    # -- 7. run control -----------------------------------------------------------------------

    def drain_if_idle(self) -> int:
        """``draining`` with nothing in flight → ``stopped`` (the ``drained`` event)."""
        with self.store.transaction() as tx:
            run = read_run(tx)
            if run.state is not RunState.DRAINING:
                return 0
            if migration_repository(self.store).count(MIGRATION_IN_FLIGHT):
                return 0
            now = self.clock.now()
            write_run(tx, run.moved(RunEvent.DRAINED, actor="engine", at=now), at=now)
            tx.audit.append(
                at=now,
                actor="engine",
                action="migration.run",
                subject="migration.run",
                details={"event": RunEvent.DRAINED.value, "from": run.state.value},
            )
        return 1


def _busy_with_6_23(record: MeterMigration, now: datetime, policy: Any) -> MeterMigration:
    return reassess(record, Eligibility((IneligibleReason.COMMAND_IN_FLIGHT,)), now, policy)


def _sql_order(order: Sequence[OrderField]) -> tuple[list[Any], bool]:
    """SQL sort expressions for ``order`` (any :class:`OrderField`; no region/supplier last)."""
    mm, d = schema.migration_meters, schema.devices
    expressions: list[Any] = []
    join = False
    for f in order:
        if f is OrderField.RETRY:
            expressions.append(retry_first())
        elif f is OrderField.DUE_AT:
            expressions.append(mm.c.next_at)
        elif f is OrderField.EUI:
            expressions.append(mm.c.device)
        elif f is OrderField.MANUFACTURER:
            expressions.append(d.c.manufacturer)
            join = True
        elif f is OrderField.MODEL:
            expressions.append(d.c.model)
            join = True
        elif f is OrderField.REGION:
            expressions.append(d.c.region.asc().nulls_last())  # meters of no region last
            join = True
        elif f is OrderField.SUPPLIER:
            # The supplier EMRR counts the meter under (kept current by enrolment and
            # sync_attribution); meters registered to nobody last.
            attributed = schema.emrr_attribution
            supplier = (
                select(attributed.c.supplier)
                .where(attributed.c.device == mm.c.device)
                .scalar_subquery()
            )
            expressions.append(supplier.asc().nulls_last())
    return expressions, join


__all__ = ["CRASH_POINTS", "Deliver", "EngineConfig", "MigrationEngine"]
