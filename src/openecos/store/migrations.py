"""Versioned schema migrations: an ordered list of steps, applied once each.

Theory of operation: ``schema_version`` holds one row per applied step.
:func:`migrate` runs inside one transaction that first takes a lock, reads the
applied version and applies the missing steps in order. Both databases have
transactional DDL, so a step is applied entirely or not at all.

Two processes starting at once: on PostgreSQL the transaction first takes
``pg_advisory_xact_lock`` keyed by the current schema, so the second waits,
then sees the first one's committed version and applies nothing. On SQLite the
transaction starts with ``BEGIN IMMEDIATE``, which has the same effect.

Rule for changing the schema: append a step; never edit a step that a
database may have applied. Step 1 creates tables from :mod:`schema`, so a
later change to a table must first copy that table's original definition
into step 1. ``tests/store/test_migrations.py`` checks the migrated database
against the metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text

from openecos.store import emrr, enrolment, schema
from openecos.store.engine import write_transaction
from openecos.store.errors import StoreError


class SchemaTooNew(StoreError):
    """The database was migrated by a newer OpenECoS than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


_LATER_TABLES = frozenset(
    {
        schema.schema_version,
        *schema.SIMULATION_TABLES,
        *schema.SERVICE_STATE_TABLES,
        *schema.MIGRATION_ENGINE_TABLES,
        *schema.EMRR_TABLES,
        schema.migration_enrol,
    }
)


def _create_tables(conn: Connection) -> None:
    # Step 1 creates the tables of version 1 only; later steps add theirs.
    tables = [t for t in schema.metadata.sorted_tables if t not in _LATER_TABLES]
    schema.metadata.create_all(conn, tables=tables)


def _create_simulation_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.SIMULATION_TABLES))


def _create_service_state_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.SERVICE_STATE_TABLES))


def _create_migration_engine_tables(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.MIGRATION_ENGINE_TABLES))


def _install_emrr(conn: Connection) -> None:
    for index in schema.EMRR_INDEXES:
        index.create(conn, checkfirst=True)
    # Tables on both databases; on PostgreSQL the counter triggers and a first count.
    emrr.install(conn)


def _add_region(conn: Connection) -> None:
    # A database created at version 8 or later has the column from step 1 (which
    # creates the current metadata's tables); an older one gains it here.
    if "region" in {c["name"] for c in inspect(conn).get_columns("devices")}:
        return
    conn.exec_driver_sql(
        "ALTER TABLE devices ADD COLUMN region VARCHAR(2) "
        f"CONSTRAINT ck_devices_region CHECK ({schema.REGION_CHECK})"
    )


_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
    for verb in ("UPDATE", "DELETE")
]

_POSTGRES_APPEND_ONLY = [
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]


def _audit_append_only(conn: Connection) -> None:
    statements = _SQLITE_APPEND_ONLY if conn.dialect.name == "sqlite" else _POSTGRES_APPEND_ONLY
    for statement in statements:
        conn.exec_driver_sql(statement)


#: Every step, in order. Versions are consecutive from 1.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create tables", _create_tables),
    Migration(
        2, "audit_log is append-only (triggers refuse UPDATE and DELETE)", _audit_append_only
    ),
    Migration(
        3,
        "simulated meter estate (meter states, certificates, meter outputs)",
        _create_simulation_tables,
    ),
    Migration(4, "service state documents (TAD counts)", _create_service_state_tables),
    Migration(
        5,
        "migration engine (per-meter migration state, regime history and approvals)",
        _create_migration_engine_tables,
    ),
    Migration(
        6,
        "EMRR counters (attribution, counts ledger kept by triggers on PostgreSQL, pending)",
        _install_emrr,
    ),
    Migration(
        7,
        "enrolment queue (devices queued by a trigger on insert; devices with no row queued)",
        enrolment.install,
    ),
    Migration(8, "devices.region: the meter's GSP group (_A ... _P), optional", _add_region),
)

LATEST_VERSION = MIGRATIONS[-1].version

# One lock per schema, so databases holding several schemas (tests) migrate in parallel.
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('openecos.migrate:' || current_schema()))"


def current_version(conn: Connection) -> int:
    """The highest applied step, 0 for an empty database."""
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return 0
    version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar_one()
    return int(version or 0)


def migrate(engine: Engine, *, now: datetime | None = None) -> int:
    """Bring the database to :data:`LATEST_VERSION`; idempotent, safe to race.

    ``now`` stamps ``schema_version.applied_at`` (defaults to the clock: this
    is an edge operation, not repository logic). Returns the version.
    """
    applied_at = now if now is not None else datetime.now(UTC)
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(_MIGRATION_LOCK))
        schema.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > LATEST_VERSION:
            raise SchemaTooNew(
                f"database is at version {version}, this code knows {LATEST_VERSION}"
            )
        for step in MIGRATIONS:
            if step.version <= version:
                continue
            step.apply(conn)
            conn.execute(
                insert(schema.schema_version).values(
                    version=step.version, description=step.description, applied_at=applied_at
                )
            )
        return LATEST_VERSION
