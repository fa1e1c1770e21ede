"""A synthetic estate of N meters loaded into PostgreSQL with COPY, for scale tests and benches.

Theory of operation. Every row is a pure function of the meter's index ``i``
and an :class:`EstateSpec`: the device EUI is ``first_device + i``, the meter
is an ESME with an MPAN or a GSME with an MPRN, its supplier, region (GSP
group), migration status (by the spec's weights), ineligible reason and
migration day are drawn from a multiplicative hash of ``i``. Nothing is
random and nothing is written to disk: :func:`load_estate` streams generated text straight into
``COPY ... FROM STDIN`` for ``devices``, ``registrations``,
``migration_meters`` (the engine's per-meter state, schema migration 5) and
``emrr_attribution`` (each meter under its registered supplier's party, as
EMRR reports suppliers), in one transaction.

Each migration row satisfies :class:`~openecos.migration.MeterMigration`'s
invariants (status, reason, credentials, error and counters agree), so the
engine can pick the estate up as if it had assessed it. The small tables
(parties, user IDs, MPIDs) go through the repositories, with their checks.

Loading 30 million meters is dominated by index maintenance, so with
``defer_indexes`` (the default) the secondary indexes and foreign keys of the
four tables are dropped for the load and recreated after it (recreating a
foreign key validates it with one join); the EMRR counter triggers are off
during the load and :func:`openecos.store.emrr.rebuild` counts once at the
end. All of it is one transaction: a failed load leaves nothing behind.
PostgreSQL only (SQLite has no COPY; small SQLite estates come from the
repositories).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from openecos.eui import Eui64
from openecos.migration.eligibility import IneligibleReason
from openecos.migration.policy import ErrorClass
from openecos.migration.record import MigrationStatus
from openecos.store import emrr, enrolment
from openecos.store.enums import UserRole
from openecos.store.records import Mpid, Party, PartyUser
from openecos.store.schema import GSP_GROUPS
from openecos.store.types import U64_BIAS

_S = MigrationStatus

#: A mid-migration estate: a third migrated, most of the rest waiting.
DEFAULT_MIX: tuple[tuple[MigrationStatus, int], ...] = (
    (_S.MIGRATED, 35),
    (_S.ELIGIBLE, 40),
    (_S.INELIGIBLE, 15),
    (_S.IN_FLIGHT, 3),
    (_S.RETRY_WAIT, 3),
    (_S.OUTCOME_UNKNOWN, 1),
    (_S.EXCEPTION, 2),
    (_S.HELD, 1),
)

_INELIGIBLE = (
    IneligibleReason.MODEL_NOT_APPROVED,
    IneligibleReason.FIRMWARE_NOT_APPROVED,
    IneligibleReason.NOT_COMMISSIONED,
    IneligibleReason.COMMAND_IN_FLIGHT,
)


@dataclass(frozen=True, slots=True)
class EstateSpec:
    """What :func:`load_estate` generates (see the module docstring)."""

    meters: int
    suppliers: int = 20
    """Supplier parties; each has an electricity (IS) and a gas (GS) MPID."""
    first_device: int = 0x00DB_0000_0000_0000
    gas_share: int = 45
    """Percent of meters that are GSMEs (MPRN) rather than ESMEs (MPAN)."""
    mix: tuple[tuple[MigrationStatus, int], ...] = DEFAULT_MIX
    as_of: datetime = field(default_factory=lambda: datetime(2027, 6, 1, tzinfo=UTC))
    """Migrations are spread over the ``migration_days`` days before this instant."""
    migration_days: int = 120

    def __post_init__(self) -> None:
        if self.meters < 0 or self.suppliers < 1 or self.suppliers > 999:
            raise ValueError("meters >= 0 and 1 <= suppliers <= 999")
        if not 0 <= self.gas_share <= 100 or self.migration_days < 1:
            raise ValueError("gas_share is a percentage; migration_days >= 1")
        if sum(w for _, w in self.mix) <= 0:
            raise ValueError("the status mix has a positive total weight")

    def device(self, i: int) -> Eui64:
        return Eui64.from_int(self.first_device + i)

    def party(self, supplier: int) -> str:
        return f"SUPPLIER-{supplier:03d}"

    def electricity_mpid(self, supplier: int) -> str:
        return f"E{supplier:03d}"

    def gas_mpid(self, supplier: int) -> str:
        return f"G{supplier:03d}"


@dataclass(frozen=True, slots=True)
class LoadTimings:
    """Seconds spent in each part of :func:`load_estate`."""

    parts: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        return sum(s for _, s in self.parts)


def _hash(i: int) -> int:
    # Knuth's multiplicative hash: cheap, deterministic, well spread over 32 bits.
    return (i * 2654435761) & 0xFFFFFFFF


class _Meter:
    """The facts of meter ``i`` that every table's row is built from."""

    __slots__ = (
        "day",
        "eui",
        "gas",
        "i",
        "ineligible",
        "mpid",
        "mpxn",
        "party",
        "region",
        "status",
    )

    def __init__(self, spec: EstateSpec, statuses: list[MigrationStatus], i: int) -> None:
        h = _hash(i)
        self.i = i
        self.eui = f"{spec.first_device + i:016X}"
        self.gas = h % 100 < spec.gas_share
        supplier = (h >> 8) % spec.suppliers
        self.party = spec.party(supplier)
        self.mpid = spec.gas_mpid(supplier) if self.gas else spec.electricity_mpid(supplier)
        self.mpxn = f"{1_000_000_000 + i}" if self.gas else f"{1_000_000_000_000 + i}"
        self.status = statuses[(h >> 16) % len(statuses)]
        self.ineligible = _INELIGIBLE[(h >> 24) % len(_INELIGIBLE)]
        self.day = (h >> 4) % spec.migration_days
        self.region = GSP_GROUPS[(h >> 12) % len(GSP_GROUPS)]


def _statuses(spec: EstateSpec) -> list[MigrationStatus]:
    table: list[MigrationStatus] = []
    for status, weight in spec.mix:
        table.extend([status] * weight)
    return table


_UTC = "+00"


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + _UTC


# --- the rows, as COPY text -------------------------------------------------------
# Columns are named in each COPY statement; \N is NULL in COPY's text format.


def _device_line(spec: EstateSpec, m: _Meter) -> str:
    migrated = m.status is _S.MIGRATED
    kind = "GSME" if m.gas else "ESME"
    status = (
        "InstalledNotCommissioned"
        if m.status is _S.INELIGIBLE and m.ineligible is IneligibleReason.NOT_COMMISSIONED
        else "Commissioned"
    )
    state = "ECOS" if migrated else "TCOS"
    make = f"MFR{m.i % 5}\tM{m.i % 7}\t0102030{m.i % 4}"
    return f"{m.eui}\t{kind}\t{status}\t{m.mpxn}\t{make}\t{state}\tf\t{m.region}\n"


DEVICE_COLUMNS = (
    "eui, device_type, status, mpxn, manufacturer, model, firmware_version, "
    "credential_state, born_ecos, region"
)
REGISTRATION_COLUMNS = "mpxn, supplier_mpid, effective_from"
MIGRATION_COLUMNS = (
    "device, status, reason, since, next_at, credentials, attempts, total_attempts, reads, "
    "error, ineligible, command_counter"
)


def _registration_line(start: str, m: _Meter) -> str:
    return f"{m.mpxn}\t{m.mpid}\t{start}\n"


class _MigrationLines:
    """``migration_meters`` rows consistent with MeterMigration's invariants."""

    def __init__(self, spec: EstateSpec) -> None:
        self.spec = spec
        self.as_of = spec.as_of.astimezone(UTC)
        self.next_at = _ts(self.as_of + timedelta(hours=1))
        self.assessed = _ts(self.as_of - timedelta(days=spec.migration_days + 1))
        # A day's migrations are stamped at noon UTC, so the day is the same in any zone near UTC.
        first = (self.as_of - timedelta(days=spec.migration_days)).replace(
            hour=12, minute=0, second=0, microsecond=0
        )
        self.days = [_ts(first + timedelta(days=d)) for d in range(spec.migration_days)]
        self.recent = _ts(self.as_of - timedelta(minutes=10))
        self.bias = U64_BIAS

    def line(self, m: _Meter) -> str:
        counter = f"{1_000_000 + m.i - self.bias}"
        status = m.status
        n = "\\N"
        fields: tuple[str, ...]
        if status is _S.MIGRATED:
            fields = ("MIGRATED", "CONFIRMED_BY_RESPONSE", self.days[m.day], n, "ECOS", "1", "1")
            rest = ("0", n, n, counter)
        elif status is _S.ELIGIBLE:
            fields = (
                "ELIGIBLE",
                "ASSESSED_ELIGIBLE",
                self.assessed,
                self.next_at,
                "TCOS",
                "0",
                "0",
            )
            rest = ("0", n, n, n)
        elif status is _S.INELIGIBLE:
            fields = (
                "INELIGIBLE",
                "ASSESSED_INELIGIBLE",
                self.assessed,
                self.next_at,
                "TCOS",
                "0",
                "0",
            )
            rest = ("0", n, m.ineligible.name, n)
        elif status is _S.IN_FLIGHT:
            fields = ("IN_FLIGHT", "COMMAND_SENT", self.recent, self.next_at, "TCOS", "1", "1")
            rest = ("0", n, n, counter)
        elif status is _S.RETRY_WAIT:
            fields = ("RETRY_WAIT", "FAILED_RETRYABLE", self.recent, self.next_at, "TCOS", "1", "1")
            rest = ("0", ErrorClass.NO_RESPONSE.name, n, counter)
        elif status is _S.OUTCOME_UNKNOWN:
            fields = ("OUTCOME_UNKNOWN", "OUTCOME_UNKNOWN", self.recent, self.next_at, "UNKNOWN")
            fields += ("1", "1")
            rest = ("0", ErrorClass.MALFORMED_RESPONSE.name, n, counter)
        elif status is _S.EXCEPTION:
            fields = (
                "EXCEPTION",
                "RETRY_BUDGET_SPENT",
                self.recent,
                self.next_at,
                "TCOS",
                "5",
                "5",
            )
            rest = ("0", ErrorClass.NO_RESPONSE.name, n, counter)
        elif status is _S.HELD:
            fields = ("HELD", "HELD_BY_OPERATOR", self.recent, self.next_at, "TCOS", "0", "0")
            rest = ("0", n, n, n)
        else:
            raise ValueError(f"the generator does not make {status.name} meters")
        return m.eui + "\t" + "\t".join(fields) + "\t" + "\t".join(rest) + "\n"


def _chunks(
    spec: EstateSpec, line: Callable[[_Meter], str], batch: int = 20_000
) -> Iterator[bytes]:
    statuses = _statuses(spec)
    for start in range(0, spec.meters, batch):
        stop = min(spec.meters, start + batch)
        yield "".join(line(_Meter(spec, statuses, i)) for i in range(start, stop)).encode()


def _copy(conn: Connection, table: str, columns: str, chunks: Iterator[bytes]) -> None:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for chunk in chunks:
            copy.write(chunk)


def add_participants(repos: Any, spec: EstateSpec) -> None:
    """The supplier parties, their user IDs and MPIDs (through the repositories)."""
    for s in range(spec.suppliers):
        party = spec.party(s)
        user = Eui64.from_int(0x90B3_D51F_3100_0000 + s)
        repos.parties.add_party(Party(party, f"Supplier {s}"))
        roles = frozenset({UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER})
        repos.parties.add_user(PartyUser(user, party, roles))
        repos.parties.add_mpid(
            Mpid(spec.electricity_mpid(s), party, user, UserRole.IMPORT_SUPPLIER)
        )
        repos.parties.add_mpid(Mpid(spec.gas_mpid(s), party, user, UserRole.GAS_SUPPLIER))


_BULK_TABLES = ("devices", "registrations", "migration_meters", "emrr_attribution")


def _secondary_ddl(conn: Connection) -> list[tuple[str, str, str, str]]:
    """(kind, name, table, DDL to recreate) of the bulk tables' non-key indexes and foreign keys."""
    rows = conn.exec_driver_sql(
        """
        WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
        SELECT 'index', i.indexname, i.tablename, i.indexdef
        FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = ANY(%(t)s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c, ns
                          WHERE c.conname = i.indexname AND c.connamespace = ns.oid)
        UNION ALL
        SELECT 'fk', c.conname, t.relname,
               format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', t.relname, c.conname,
                      pg_get_constraintdef(c.oid))
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid, ns
        WHERE c.contype = 'f' AND t.relname = ANY(%(t)s) AND c.connamespace = ns.oid
        """,
        {"t": list(_BULK_TABLES)},
    )
    return [(kind, name, table, ddl) for kind, name, table, ddl in rows]


def load_estate(
    conn: Connection,
    spec: EstateSpec,
    *,
    defer_indexes: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> LoadTimings:
    """Loads the spec's meters into empty estate tables, in the caller's transaction.

    Participants must exist (:func:`add_participants`); EMRR's tables must be
    installed (:func:`openecos.store.emrr.install`). Returns the time of each
    part. PostgreSQL only.
    """
    if conn.dialect.name != "postgresql":
        raise ValueError("load_estate needs PostgreSQL (COPY)")
    parts: list[tuple[str, float]] = []

    def timed(name: str, work: Callable[[], object]) -> None:
        start = time.perf_counter()
        work()
        parts.append((name, time.perf_counter() - start))
        if progress is not None:
            progress(name, parts[-1][1])

    secondary = _secondary_ddl(conn) if defer_indexes else []
    emrr.set_triggers(conn, enabled=False)
    enrolment.set_trigger(conn, enabled=False)  # it writes every meter's migration row itself
    for kind, name, table, _ in secondary:
        if kind == "fk":
            conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        else:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')

    start = _ts(spec.as_of - timedelta(days=400))
    lines = _MigrationLines(spec)
    timed(
        "devices",
        lambda: _copy(conn, "devices", DEVICE_COLUMNS, _chunks(spec, _device_line_of(spec))),
    )
    timed(
        "registrations",
        lambda: _copy(
            conn,
            "registrations",
            REGISTRATION_COLUMNS,
            _chunks(spec, lambda m: _registration_line(start, m)),
        ),
    )
    timed(
        "migration_meters",
        lambda: _copy(conn, "migration_meters", MIGRATION_COLUMNS, _chunks(spec, lines.line)),
    )
    timed(
        "emrr_attribution",
        lambda: _copy(
            conn,
            "emrr_attribution",
            "device, supplier",
            _chunks(spec, lambda m: f"{m.eui}\t{m.party}\n"),
        ),
    )
    for kind, name, _, ddl in secondary:
        timed(f"{kind} {name}", lambda ddl=ddl: conn.exec_driver_sql(ddl))  # type: ignore[misc]
    emrr.set_triggers(conn, enabled=True)
    enrolment.set_trigger(conn, enabled=True)
    timed("emrr counters (full count)", lambda: emrr.rebuild(conn))
    # Each meter was attributed to its supplier at as_of: the first sync starts from there.
    emrr.mark_attributed(conn, spec.as_of)
    timed("analyze", lambda: [conn.exec_driver_sql(f"ANALYZE {t}") for t in _BULK_TABLES])
    return LoadTimings(tuple(parts))


def _device_line_of(spec: EstateSpec) -> Callable[[_Meter], str]:
    return lambda m: _device_line(spec, m)


def expected_day(spec: EstateSpec, i: int) -> date:
    """The day meter ``i`` migrated, if the spec made it migrated (tests)."""
    first = (spec.as_of.astimezone(UTC) - timedelta(days=spec.migration_days)).date()
    return first + timedelta(days=(_hash(i) >> 4) % spec.migration_days)
