"""The migration engine's tables: one row per meter, claims with leases, EMRR counts.

Theory of operation. ``migration_meters`` (schema migration 5) holds one
:class:`~openecos.migration.record.MeterMigration` per meter the engine has
assessed, every enumeration stored by member NAME:

=================  ===================================================================
column             meaning
=================  ===================================================================
device             the meter (EUI-64 hex, FK ``devices.eui``), primary key
status             :class:`~openecos.migration.record.MigrationStatus` name
reason             :class:`~openecos.migration.record.Reason` name
since, next_at     when the status began; when its next action is due (NULL: migrated)
credentials        :class:`~openecos.migration.record.CredentialKnowledge` name
attempts, ...      ``attempts``, ``total_attempts``, ``reads`` (0x0106 / CS02a counts)
error              :class:`~openecos.migration.policy.ErrorClass` name or NULL
ineligible         :class:`~openecos.migration.eligibility.IneligibleReason` name or NULL
command_counter    TCoS originator counter of the latest 0x0106 (BiasedU64)
read_counter       ACB originator counter of the latest CS02a read (BiasedU64)
actor, note        the latest operator action's who and why
claimed_by,        a worker's claim on the row and its lease (NULL when unclaimed); a
lease_until        claim whose lease ran out is taken over by the next claimer
=================  ===================================================================

Indexes: ``(status, next_at)`` serves the claims (the due rows of a few
statuses, earliest first) and the in-flight count; ``(status, ineligible)``
serves the EMRR counts. The EMRR figures (:meth:`MigrationRepository.report_rows`)
and the enrolment queries live in :mod:`openecos.store.migration_report` and
:mod:`openecos.store.enrolment`.

Claims (:meth:`MigrationRepository.claim`) pick due rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (any number of engine processes)
and set ``claimed_by``/``lease_until``; every later write of a claimed row is
fenced by that pair (:meth:`MigrationRepository.save` with ``claim=``), so a
worker whose claim was taken over changes nothing. Writes that answer a
meter (a response, a read) lock the row (``FOR UPDATE``) and clear any claim,
so a worker that claimed the same row for a timeout loses its fence. The
SQLite fallback runs every write in ``BEGIN IMMEDIATE``: correct for one
process (and several, serialised).

:meth:`MigrationRepository.reserve_counters` reserves a block of originator
counters on ``signing_counters`` in its own committed transaction (the same
row :class:`~openecos.store.SigningCounterRepository` uses), so a batch of
commands costs one durable write, and a crash only skips values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    LargeBinary,
    Row,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, MessageCode, RemotePartyRole
from openecos.migration.eligibility import IneligibleReason
from openecos.migration.emrr import CountRow, DailyRow
from openecos.migration.policy import ErrorClass
from openecos.migration.record import (
    CredentialKnowledge,
    MeterMigration,
    MigrationStatus,
    Reason,
)
from openecos.store import migration_report, schema
from openecos.store._base import Executor, Repository
from openecos.store.devices import device_from_row
from openecos.store.engine import write_transaction
from openecos.store.enums import IN_FLIGHT_COMMAND_STATUSES, CommandStatus, CosCredentialState
from openecos.store.errors import CounterExhausted, InvalidRecord, LeaseLost
from openecos.store.facade import Repositories, Store
from openecos.store.records import U64_MAX, CommandRecord, Device, utc
from openecos.store.simulated import SimulatedOutput
from openecos.store.simulated import unnest_rows as _unnest

_mm, _d, _cmd = schema.migration_meters, schema.devices, schema.commands
_audit = schema.audit_log
_o = schema.sim_meter_outputs

#: The commands whose answers the migration engine processes: 0x0106 and the CS02a read.
MIGRATION_MESSAGE_CODES = frozenset(
    {
        MessageCode.CS02B_TRANS_COS_BY_TRANS_COS,
        MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS,
    }
)

_S = MigrationStatus
#: Statuses in which a 0x0106 or its CS02a read is out, or its outcome is being established:
#: a 6.23 for the meter waits (shared/docs/architecture.md flow 2, issue 4 item 4).
MIGRATION_IN_FLIGHT = frozenset({_S.IN_FLIGHT, _S.OUTCOME_UNKNOWN, _S.READING_CREDENTIALS})
#: Statuses with a command or read on the wire (what the in-flight capacity limit counts).
ON_THE_WIRE = frozenset({_S.IN_FLIGHT, _S.READING_CREDENTIALS})
#: Credential-changing command statuses that mean "on the wire" (a held future-dated
#: command, AwaitingExecution, is not: the meter has it and a 0x0106 does not disturb it).
WIRE_COMMAND_STATUSES = IN_FLIGHT_COMMAND_STATUSES - {CommandStatus.AWAITING_EXECUTION}


class SentCommand(NamedTuple):
    """A recorded command as its answer is matched to it (without its bytes)."""

    signer: Eui64
    originator_counter: int
    device: Eui64
    message_code: MessageCode
    status: CommandStatus


@dataclass(frozen=True, slots=True)
class MigrationClaim:
    """A claimed row: the record as claimed and the fence that proves ownership."""

    record: MeterMigration
    worker: str
    lease_until: datetime


def _name(value: Any) -> str | None:
    return None if value is None else str(value.name)


def record_values(record: MeterMigration) -> dict[str, Any]:
    """The row of ``record`` (without the claim columns)."""
    return {
        "device": record.device,
        "status": record.status.name,
        "reason": record.reason.name,
        "since": record.since,
        "next_at": record.next_at,
        "credentials": record.credentials.name,
        "attempts": record.attempts,
        "total_attempts": record.total_attempts,
        "reads": record.reads,
        "error": _name(record.error),
        "ineligible": _name(record.ineligible),
        "command_counter": record.command_counter,
        "read_counter": record.read_counter,
        "actor": record.actor,
        "note": record.note or None,
    }


def _record(row: Row[Any]) -> MeterMigration:
    return MeterMigration(
        device=row.device,
        status=MigrationStatus[row.status],
        reason=Reason[row.reason],
        since=row.since,
        next_at=row.next_at,
        credentials=CredentialKnowledge[row.credentials],
        attempts=int(row.attempts),
        total_attempts=int(row.total_attempts),
        reads=int(row.reads),
        error=None if row.error is None else ErrorClass[row.error],
        ineligible=None if row.ineligible is None else IneligibleReason[row.ineligible],
        command_counter=row.command_counter,
        read_counter=row.read_counter,
        actor=row.actor,
        note=row.note or "",
    )


def _names(statuses: Iterable[MigrationStatus]) -> list[str]:
    return sorted(s.name for s in statuses)


class MigrationRepository(Repository):
    """Per-meter migration rows (see the module docstring)."""

    __slots__ = ()

    # -- rows ---------------------------------------------------------------------------------

    def get(self, device: Eui64) -> MeterMigration | None:
        with self._db.read() as conn:
            row = conn.execute(select(_mm).where(_mm.c.device == device)).first()
        return None if row is None else _record(row)

    def lock(self, device: Eui64) -> MeterMigration | None:
        """The row locked until the caller's transaction ends (``FOR UPDATE``), or None."""
        with self._db.read() as conn:
            query = select(_mm).where(_mm.c.device == device)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def status_of(self, device: Eui64) -> MigrationStatus | None:
        with self._db.read() as conn:
            value = conn.execute(select(_mm.c.status).where(_mm.c.device == device)).scalar()
        return None if value is None else MigrationStatus[value]

    def migration_in_flight(self, device: Eui64) -> bool:
        """Whether a 0x0106 or its read is out for ``device`` (a 6.23 must wait)."""
        status = self.status_of(device)
        return status is not None and status in MIGRATION_IN_FLIGHT

    def insert_many(self, records: Sequence[MeterMigration]) -> int:
        """Adds rows for meters that have none; returns how many were added."""
        if not records:
            return 0
        with self._db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            done = conn.execute(
                dialect.insert(_mm)
                .on_conflict_do_nothing(index_elements=["device"])
                .returning(_mm.c.device),
                [record_values(r) for r in records],
            )
            return len(done.all())

    def save(self, record: MeterMigration, *, claim: MigrationClaim | None = None) -> None:
        """Writes ``record`` over its row and clears any claim.

        With ``claim``, only if that claim still holds (else :class:`LeaseLost`);
        without, unconditionally (the caller holds the row lock).
        """
        query = update(_mm).where(_mm.c.device == record.device)
        if claim is not None:
            query = query.where(
                _mm.c.claimed_by == claim.worker, _mm.c.lease_until == claim.lease_until
            )
        values = record_values(record)
        del values["device"]
        with self._db.write() as conn:
            done = conn.execute(query.values(**values, claimed_by=None, lease_until=None))
        if done.rowcount != 1:
            raise LeaseLost(f"migration of {record.device}: the claim was taken over")

    def release(self, claim: MigrationClaim) -> bool:
        """Gives a claim up unchanged; False if it was already taken over."""
        with self._db.write() as conn:
            done = conn.execute(
                update(_mm)
                .where(
                    _mm.c.device == claim.record.device,
                    _mm.c.claimed_by == claim.worker,
                    _mm.c.lease_until == claim.lease_until,
                )
                .values(claimed_by=None, lease_until=None)
            )
        return done.rowcount == 1

    # -- claims -------------------------------------------------------------------------------

    def claim(
        self,
        statuses: Iterable[MigrationStatus],
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        order: Sequence[Any] = (),
        join_devices: bool = False,
    ) -> list[MigrationClaim]:
        """Claims up to ``limit`` rows in ``statuses`` that are due and not claimed.

        ``order`` are extra SQL sort expressions placed before ``next_at,
        device``; with ``join_devices`` they may use ``devices`` columns.
        """
        when = utc("now", now)
        if lease <= timedelta(0):
            raise InvalidRecord("lease", "a lease is a positive timedelta")
        if limit <= 0:
            return []
        until = when + lease
        with self._db.write() as conn:
            query = (
                select(_mm.c.device)
                .where(
                    _mm.c.status.in_(_names(statuses)),
                    _mm.c.next_at <= when,
                    or_(_mm.c.claimed_by.is_(None), _mm.c.lease_until <= when),
                )
                .order_by(*order, _mm.c.next_at, _mm.c.device)
                .limit(limit)
            )
            if join_devices:
                query = query.join(_d, _d.c.eui == _mm.c.device)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=_mm, skip_locked=True)
            devices = list(conn.execute(query).scalars())
            if not devices:
                return []
            rows = conn.execute(
                update(_mm)
                .where(_among(conn, _mm.c.device, devices))
                .values(claimed_by=worker, lease_until=until)
                .returning(*_mm.c)
            ).all()
        rows = list(rows)
        position = {d: i for i, d in enumerate(devices)}
        rows.sort(key=lambda r: position[r.device])
        return [MigrationClaim(_record(r), worker, until) for r in rows]

    # -- figures ------------------------------------------------------------------------------

    def count(self, statuses: Iterable[MigrationStatus]) -> int:
        with self._db.read() as conn:
            value = conn.execute(
                select(func.count()).select_from(_mm).where(_mm.c.status.in_(_names(statuses)))
            ).scalar_one()
        return int(value)

    def counts_by_status(self) -> dict[MigrationStatus, int]:
        with self._db.read() as conn:
            rows = conn.execute(select(_mm.c.status, func.count()).group_by(_mm.c.status)).all()
        return {MigrationStatus[r[0]]: int(r[1]) for r in rows}

    def next_due(self, statuses: Iterable[MigrationStatus]) -> datetime | None:
        """The earliest ``next_at`` among rows in ``statuses`` (a virtual clock jumps there)."""
        with self._db.read() as conn:
            value = conn.execute(
                select(func.min(_mm.c.next_at)).where(_mm.c.status.in_(_names(statuses)))
            ).scalar()
        return None if value is None else utc("next_due", _as_datetime(value))

    def find(
        self,
        statuses: Iterable[MigrationStatus],
        *,
        after: Eui64 | None = None,
        limit: int = 100,
    ) -> list[MeterMigration]:
        """Rows in ``statuses`` in device order after ``after`` (the exceptions queue)."""
        query = (
            select(_mm)
            .where(_mm.c.status.in_(_names(statuses)))
            .order_by(_mm.c.device)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_mm.c.device > after)
        with self._db.read() as conn:
            return [_record(r) for r in conn.execute(query)]

    def count_rows(self, now: datetime) -> list[CountRow]:
        """EMRR counts per (registered supplier party now, status, ineligible reason)."""
        return self.report_rows(now)[0]

    def daily_rows(self, now: datetime) -> list[DailyRow]:
        """Confirmed migrations per (registered supplier party now, day)."""
        return self.report_rows(now)[1]

    def report_rows(self, now: datetime) -> tuple[list[CountRow], list[DailyRow]]:
        """Both EMRR aggregates at ``now``: counters on PostgreSQL, a recount on SQLite
        (:mod:`openecos.store.migration_report`)."""
        return migration_report.report_rows(self._db, now)

    def recount_rows(self, now: datetime) -> tuple[list[CountRow], list[DailyRow]]:
        """Both EMRR aggregates by a full scan, suppliers from the registrations at ``now``."""
        return migration_report.recount_rows(self._db, now)

    def sync_attribution(self, now: datetime) -> int:
        """Brings each meter's EMRR supplier to ``now``; returns the meters moved."""
        return migration_report.sync_attribution(self._db, now)

    # -- devices the engine has not assessed ----------------------------------------------------

    def unassessed(self, *, after: Eui64 | None, limit: int) -> list[Any]:
        """Inventory devices with no migration row, in EUI order after ``after`` (full scan)."""
        return migration_report.unassessed(self._db, after=after, limit=limit)

    def commands_on_the_wire(self, devices: Sequence[Eui64]) -> dict[Eui64, CommandStatus]:
        """For each of ``devices``, the status of its credential-changing command in flight."""
        if not devices:
            return {}
        with self._db.read() as conn:
            rows = conn.execute(
                select(_cmd.c.device, _cmd.c.status).where(
                    _among(conn, _cmd.c.device, list(devices)),
                    _cmd.c.credential_changing,
                    _cmd.c.status.in_(sorted(IN_FLIGHT_COMMAND_STATUSES)),
                )
            ).all()
        return {r.device: r.status for r in rows}

    def lock_held_command(self, device: Eui64) -> bool:
        """Locks ``device``'s held (AwaitingExecution) command; False if it has none now."""
        with self._db.read() as conn:
            query = select(_cmd.c.signer).where(
                _cmd.c.device == device,
                _cmd.c.credential_changing,
                _cmd.c.status == CommandStatus.AWAITING_EXECUTION,
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            return conn.execute(query).first() is not None

    def devices(self, euis: Sequence[Eui64]) -> dict[Eui64, Device]:
        """The inventory rows of ``euis`` (absent devices are left out)."""
        if not euis:
            return {}
        with self._db.read() as conn:
            rows = conn.execute(select(_d).where(_among(conn, _d.c.eui, list(euis)))).all()
        return {r.eui: device_of(r) for r in rows}

    def migrated_since(self, instant: datetime) -> int:
        """Meters whose migration was confirmed at or after ``instant`` (the trailing rate)."""
        with self._db.read() as conn:
            value = conn.execute(
                select(func.count())
                .select_from(_mm)
                .where(
                    _mm.c.status == MigrationStatus.MIGRATED.name,
                    _mm.c.since >= utc("instant", instant),
                )
            ).scalar_one()
        return int(value)

    # -- the meters' answers to migration commands ---------------------------------------------

    def next_outputs(self, signers: Sequence[Eui64], *, limit: int) -> list[SimulatedOutput]:
        """Unconsumed meter outputs answering a 0x0106 or a CS02a read, locked, oldest first.

        PostgreSQL skips outputs another process holds. Call inside a transaction and
        consume each one there (``estate.consume_output``).
        """
        query = (
            select(_o)
            .select_from(
                _o.join(
                    _cmd,
                    and_(
                        _cmd.c.signer == _o.c.recipient,
                        _cmd.c.originator_counter == _o.c.originator_counter,
                    ),
                )
            )
            .where(
                _o.c.consumed_at.is_(None),
                _o.c.recipient.in_(list(signers)),
                _cmd.c.message_code.in_([int(c) for c in MIGRATION_MESSAGE_CODES]),
            )
            .order_by(_o.c.output_id)
            .limit(limit)
        )
        with self._db.read() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=_o, skip_locked=True)
            rows = conn.execute(query).all()
        return [
            SimulatedOutput(
                output_id=int(r.output_id),
                device=r.device,
                kind=r.kind,
                recipient=r.recipient,
                originator_counter=int(r.originator_counter),
                message=bytes(r.message),
                created_at=r.created_at,
            )
            for r in rows
        ]

    def commands_by_key(
        self, keys: Sequence[tuple[Eui64, int]]
    ) -> dict[tuple[Eui64, int], SentCommand]:
        """What the answers need of the commands ``(signer, counter)`` that exist (one query
        per signer; not their bytes, which a batch would carry back for nothing)."""
        if not keys:
            return {}
        wanted = set(keys)
        found: dict[tuple[Eui64, int], SentCommand] = {}
        with self._db.read() as conn:
            for signer in {k[0] for k in wanted}:
                counters = sorted({c for s, c in wanted if s == signer})
                rows = conn.execute(
                    select(
                        _cmd.c.signer,
                        _cmd.c.originator_counter,
                        _cmd.c.device,
                        _cmd.c.message_code,
                        _cmd.c.status,
                    ).where(
                        _cmd.c.signer == signer,
                        _among(conn, _cmd.c.originator_counter, counters),
                    )
                ).all()
                for row in rows:
                    command = SentCommand(
                        row.signer, row.originator_counter, row.device, row.message_code, row.status
                    )
                    found[(command.signer, command.originator_counter)] = command
        return found

    def lock_many(self, devices: Sequence[Eui64]) -> dict[Eui64, MeterMigration]:
        """The rows of ``devices``, locked in device order (``FOR UPDATE`` on PostgreSQL)."""
        if not devices:
            return {}
        with self._db.read() as conn:
            query = (
                select(_mm)
                .where(_among(conn, _mm.c.device, sorted(set(devices))))
                .order_by(_mm.c.device)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            return {r.device: _record(r) for r in conn.execute(query)}

    def apply_effects(
        self,
        *,
        records: Sequence[MeterMigration],
        commands: Sequence[tuple[Eui64, int, CommandStatus, bytes | None]],
        flips: Sequence[Eui64],
        ecos_certificate: bytes,
        ecos_subject: Eui64,
        ecos_ski: bytes,
        audit: Sequence[dict[str, Any]],
        consumed: Sequence[int],
        at: datetime,
    ) -> None:
        """Writes a batch of answers' effects set-wise, in the caller's transaction.

        ``consumed`` outputs are marked consumed; ``records`` overwrite their rows
        (clearing any claim: an answer trumps a claim for a time-out); ``commands``
        still in flight move to their status (with the answer's bytes when given);
        ``flips`` become ECOS in the inventory with the ECoS certificate in their
        transitionalCoS DS cell (only ever from a confirmed outcome); ``audit`` is
        appended.
        """
        when = utc("at", at)
        with self._db.write() as conn:
            if consumed:
                conn.execute(
                    update(_o)
                    .where(_among(conn, _o.c.output_id, list(consumed)), _o.c.consumed_at.is_(None))
                    .values(consumed_at=when)
                )
            _write_records(conn, records)
            # Set-wise when each command changes once (the batch's usual shape); a command
            # changed twice in one batch goes row by row, in order, as each change sees the last.
            once = len({(s, c) for s, c, _, _ in commands}) == len(commands)
            if commands and once and conn.dialect.name == "postgresql":
                rows = [
                    {"signer": s, "originator_counter": c, "status": st, "response": r}
                    for s, c, st, r in commands
                ]
                source, params = _unnest(conn, _cmd, rows, list(rows[0]))
                params["at"] = when
                params["in_flight"] = sorted(s.value for s in IN_FLIGHT_COMMAND_STATUSES)
                conn.exec_driver_sql(
                    "UPDATE commands AS k SET status = u.status, answered_at = %(at)s, "
                    "response = coalesce(u.response, k.response) "
                    f"FROM {source} WHERE k.signer = u.signer "
                    "AND k.originator_counter = u.originator_counter "
                    "AND k.status = ANY(%(in_flight)s)",
                    params,
                )
            elif commands:
                conn.execute(
                    update(_cmd)
                    .where(
                        _cmd.c.signer == bindparam("b_signer"),
                        _cmd.c.originator_counter == bindparam("b_counter"),
                        # executemany takes no IN list: spell the in-flight statuses out.
                        or_(*(_cmd.c.status == s for s in sorted(IN_FLIGHT_COMMAND_STATUSES))),
                    )
                    .values(
                        status=bindparam("b_status"),
                        answered_at=when,
                        response=func.coalesce(
                            bindparam("b_response", type_=LargeBinary), _cmd.c.response
                        ),
                    ),
                    [
                        {"b_signer": s, "b_counter": c, "b_status": st, "b_response": r}
                        for s, c, st, r in commands
                    ],
                )
            if flips:
                devices = sorted(set(flips))
                conn.execute(
                    update(_d)
                    .where(
                        _among(conn, _d.c.eui, devices),
                        _d.c.credential_state == CosCredentialState.TCOS,
                    )
                    .values(credential_state=CosCredentialState.ECOS)
                )
                ta = schema.device_trust_anchors
                conn.execute(
                    update(ta)
                    .where(
                        _among(conn, ta.c.device, devices),
                        ta.c.role == RemotePartyRole.TRANSITIONAL_COS,
                        ta.c.key_usage == KeyUsage.DIGITAL_SIGNATURE,
                    )
                    .values(
                        certificate_der=ecos_certificate, subject_eui=ecos_subject, ski=ecos_ski
                    )
                )
            if audit:
                _append_audit(conn, audit)

    # -- bulk writes the engine makes in one transaction ----------------------------------------

    def still_claimed(self, claims: Sequence[MigrationClaim]) -> set[Eui64]:
        """The devices whose claim in ``claims`` still holds, locked (``FOR UPDATE``)."""
        if not claims:
            return set()
        held: set[Eui64] = set()
        with self._db.read() as conn:
            for (worker, until), group in _by_fence(claims).items():
                query = select(_mm.c.device).where(
                    _among(conn, _mm.c.device, sorted(group)),
                    _mm.c.claimed_by == worker,
                    _mm.c.lease_until == until,
                )
                if conn.dialect.name == "postgresql":
                    query = query.order_by(_mm.c.device).with_for_update()
                held.update(conn.execute(query).scalars())
        return held

    def record_starts(
        self, commands: Sequence[CommandRecord], records: Sequence[MeterMigration]
    ) -> None:
        """Inserts ``commands`` and writes ``records`` set-wise (rows the caller holds).

        Raises ``IntegrityError`` if the database refuses a command (the one-in-flight
        index): the caller rolls back its savepoint and records them one by one.
        """
        rows = [
            {
                "signer": c.signer,
                "originator_counter": c.originator_counter,
                "device": c.device,
                "request_id": c.request_id,
                "message_code": c.message_code,
                "credential_changing": c.credential_changing,
                "payload": c.payload,
                "status": c.status,
                "created_at": c.created_at,
            }
            for c in commands
        ]
        with self._db.write() as conn:
            if rows and conn.dialect.name == "postgresql":
                columns = list(rows[0])
                source, params = _unnest(conn, _cmd, rows, columns)
                names = ", ".join(columns)
                conn.exec_driver_sql(
                    f"INSERT INTO commands ({names}) SELECT {names} FROM {source}", params
                )
            elif rows:
                conn.execute(insert(_cmd), rows)
            _write_records(conn, records)

    def mark_sent(self, keys: Sequence[tuple[Eui64, int]], *, at: datetime) -> None:
        """Moves Prepared commands ``(signer, counter)`` to Sent (the bytes went out)."""
        if not keys:
            return
        when = utc("at", at)
        by_signer: dict[Eui64, list[int]] = {}
        for signer, counter in keys:
            by_signer.setdefault(signer, []).append(counter)
        with self._db.write() as conn:
            for signer, counters in by_signer.items():  # one statement per signer
                conn.execute(
                    update(_cmd)
                    .where(
                        _cmd.c.signer == signer,
                        _among(conn, _cmd.c.originator_counter, sorted(counters)),
                        _cmd.c.status == CommandStatus.PREPARED,
                    )
                    .values(status=CommandStatus.SENT, sent_at=when)
                )

    def audit_many(self, entries: Sequence[dict[str, Any]]) -> None:
        """Appends audit entries (``at``, ``actor``, ``action``, ``subject``, ``details``)."""
        if entries:
            with self._db.write() as conn:
                _append_audit(conn, entries)


def _among(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``column = ANY(array)``: one parameter however
    many values, so the statement text (and its cached plan) is the same for every batch."""
    if conn.dialect.name != "postgresql":
        return column.in_(list(values))
    return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))


def _write_records(conn: Connection, records: Sequence[MeterMigration]) -> None:
    """Overwrites the rows of ``records`` (clearing claims): one statement on PostgreSQL
    (so the EMRR counter triggers run once for the batch), one executemany on SQLite."""
    if not records:
        return
    columns = [c for c in record_values(records[0]) if c != "device"]
    if conn.dialect.name == "postgresql":
        # One row per device, the last written winning, as the executemany would leave it.
        latest = {r.device: r for r in records}
        source, params = _unnest(
            conn, _mm, [record_values(r) for r in latest.values()], ["device", *columns]
        )
        assignments = ", ".join(f"{c} = u.{c}" for c in columns)
        conn.exec_driver_sql(
            f"UPDATE migration_meters AS m SET {assignments}, claimed_by = NULL, "
            f"lease_until = NULL FROM {source} WHERE m.device = u.device",
            params,
        )
        return
    conn.execute(
        update(_mm)
        .where(_mm.c.device == bindparam("b_device"))
        .values(
            {c: bindparam(f"b_{c}") for c in columns} | {"claimed_by": None, "lease_until": None}
        ),
        [{f"b_{k}": v for k, v in record_values(r).items()} for r in records],
    )


_AUDIT_COLUMNS = ("at", "actor", "action", "subject", "details")


def _append_audit(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Appends audit entries: one INSERT ... SELECT on PostgreSQL, an executemany on SQLite."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(_audit), [dict(e) for e in entries])
        return
    source, params = _unnest(conn, _audit, entries, _AUDIT_COLUMNS)
    columns = ", ".join(_AUDIT_COLUMNS)
    conn.exec_driver_sql(
        f"INSERT INTO audit_log ({columns}) SELECT {columns} FROM {source}", params
    )


def _by_fence(claims: Sequence[MigrationClaim]) -> dict[tuple[str, datetime], set[Eui64]]:
    groups: dict[tuple[str, datetime], set[Eui64]] = {}
    for claim in claims:
        groups.setdefault((claim.worker, claim.lease_until), set()).add(claim.record.device)
    return groups


def reserve_counters(store: Store, entity: Eui64, n: int) -> range:
    """Reserves ``n`` originator counters of ``entity`` durably; returns them, in order.

    One committed upsert ``last_counter = last_counter + n`` on the row
    :class:`~openecos.store.SigningCounterRepository` uses: the caller owns
    ``(previous, previous + n]`` and may use them in any order; values it does
    not use are skipped, never reused (counters increase, need not be contiguous).
    """
    if not isinstance(n, int) or n < 1:
        raise InvalidRecord("n", "reserve at least one counter")
    sc = schema.signing_counters
    with write_transaction(store.engine) as conn:
        is_pg = conn.dialect.name == "postgresql"
        stmt = (postgresql if is_pg else sqlite).insert(sc).values(entity=entity, last_counter=n)
        stmt = stmt.on_conflict_do_update(
            index_elements=[sc.c.entity],
            set_={"last_counter": sc.c.last_counter + literal(n)},
            where=sc.c.last_counter <= U64_MAX - n,
        ).returning(sc.c.last_counter)
        last = conn.execute(stmt).scalar()
    if last is None:
        raise CounterExhausted(f"signing counter of {entity} cannot advance by {n}")
    last = int(last)
    return range(last - n + 1, last + 1)


@dataclass(frozen=True, slots=True)
class MigrationTx:
    """One transaction: the store's repositories, the migration repository, savepoints."""

    repos: Repositories
    mig: MigrationRepository
    connection: Connection

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: rolled back alone if the block raises."""
        with self.connection.begin_nested():
            yield


@contextmanager
def migration_transaction(store: Store) -> Iterator[MigrationTx]:
    """The store's repositories and the migration repository in one transaction."""
    with write_transaction(store.engine) as conn:
        db = Executor(store.engine, conn)
        yield MigrationTx(Repositories.bound(db), MigrationRepository(db), conn)


def bound(tx: Repositories) -> MigrationRepository:
    """The migration repository in the transaction ``tx`` already runs (one Executor)."""
    return MigrationRepository(tx.audit._db)  # every repository of ``tx`` shares it


device_of = device_from_row
"""A whole ``devices`` row as a :class:`Device` (the devices repository's reading)."""


def migration_repository(store: Store) -> MigrationRepository:
    """The repository with a transaction of its own per call."""
    return MigrationRepository(Executor(store.engine))


def retry_first() -> Any:
    """SQL order: retries (RETRY_WAIT) before first attempts (planning.OrderField.RETRY)."""
    return case((_mm.c.status == MigrationStatus.RETRY_WAIT.name, 0), else_=1)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


__all__ = [
    "MIGRATION_IN_FLIGHT",
    "MIGRATION_MESSAGE_CODES",
    "ON_THE_WIRE",
    "WIRE_COMMAND_STATUSES",
    "MigrationClaim",
    "MigrationRepository",
    "MigrationTx",
    "SentCommand",
    "bound",
    "device_of",
    "migration_repository",
    "migration_transaction",
    "record_values",
    "reserve_counters",
    "retry_first",
]
