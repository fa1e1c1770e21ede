"""EMRR figures in SQL: counts per supplier and overall, and the daily series, at any scale.

Theory of operation. :func:`openecos.migration.report_from_counts` wants two
aggregates of the engine's per-meter table ``migration_meters``: meters by
(supplier, status, ineligible reason) and migrations by (supplier, day).
Scanning 30 million rows for them takes minutes, so on PostgreSQL they are
kept as *counters*, changed by triggers in the same transaction as each
change of a meter's row, and the report reads a few hundred rows
(:func:`emrr_rows`). On SQLite (sandbox scale) the report recounts.

Which supplier a meter counts under is kept in ``emrr_attribution`` (device →
the party registered as its supplier, so a party with several MPIDs is one
supplier, as in :func:`openecos.store.migration_report.recount_rows`), not
recomputed from registrations by each trigger: the counter a change subtracts
from must be the one its earlier change added to, and registrations change by
date without any write. It is kept current on both databases (the engine also
orders starts by it):

- at enrolment, in the transaction that inserts the meter's row
  (:func:`attribute_devices`, before the row, so its INSERT counts it there);
- every writer of registrations (the repository, the CSV import, a device
  whose MPxN changes) notes the MPxNs it wrote in ``emrr_pending``, in its own
  transaction (:func:`registrations_changed`): a writer has no clock, and a
  registration may start in the future;
- :func:`sync_attribution` at a given instant re-attributes the noted MPxNs'
  meters and those whose registration began or ended since the previous sync
  (the instant kept in ``service_state``; the first sync re-attributes every
  meter, :func:`refresh_attribution`). Every report on PostgreSQL runs it first
  (:mod:`openecos.store.migration_report`), and so does the engine every
  ``emrr_every``. A meter with no registration counts under no supplier (``None``).

Exactness under concurrency, on PostgreSQL:

- Counters are an append-only ledger (``emrr_counts``: key columns and a
  signed ``n``; several rows per key). A trigger *inserts* its statement's
  aggregated deltas, never updates a row, so concurrent writers never wait on
  a hot counter row and cannot deadlock on counters. A change that rolls back
  takes its delta rows with it.
- Statement-level triggers with transition tables: one ``UPDATE`` of a
  thousand meters inserts one delta row per key it moved (-1 for the old
  values, +1 for the new, summed; keys whose sum is 0 are not written).
- :func:`compact` folds the ledger into one row per key in one transaction
  (``DELETE ... RETURNING`` feeding an ``INSERT``), under a transaction-level
  advisory lock so two compactions never interleave. Under READ COMMITTED
  the ``DELETE`` removes only committed rows its snapshot sees; rows committed
  later stay for the next compaction. A report is one snapshot (REPEATABLE
  READ), so it sees the ledger before or after a compaction, never half.
- A re-attribution and a status change of the same meter are serialised on
  the meter's ``migration_meters`` row: :func:`refresh_attribution` locks the
  rows (``FOR SHARE``, in device order) before changing ``emrr_attribution``,
  so each trigger reads the other's committed value.

:func:`recount_rows` is the same figures by a full scan; tests compare the
two after concurrent writers (``tests/scale``).

Installing: schema migration 6 calls :func:`install`, which creates the
tables and triggers (idempotent) and counts the rows present;
:func:`rebuild` recomputes the counters from a full scan (after a bulk load
with the triggers off, or to repair). The engine folds the ledger every
``emrr_every`` (:func:`compact`, one process at a time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite

from openecos.eui import Eui64
from openecos.store import schema
from openecos.store.records import utc
from openecos.store.types import UtcDateTime

if TYPE_CHECKING:
    from openecos.migration.emrr import CountRow, DailyRow

emrr_attribution, emrr_counts, emrr_pending = (
    schema.emrr_attribution,
    schema.emrr_counts,
    schema.emrr_pending,
)
#: The EMRR tables (schema migration 6).
EMRR_TABLES = schema.EMRR_TABLES

#: MigrationStatus.MIGRATED by NAME, as migration_meters stores it (store/schema.py).
_MIGRATED = "MIGRATED"
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('openecos.emrr:' || current_schema()))"
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('openecos.emrr:' || current_schema()))"


def _key(rows: str, sign: str) -> str:
    """The delta rows of one transition table joined to the meters' attribution."""
    return f"""
        SELECT a.supplier, r.status, r.ineligible,
               CASE WHEN r.status = '{_MIGRATED}'
                    THEN (r.since AT TIME ZONE 'UTC')::date END AS migrated_on,
               {sign}1 AS n
        FROM {rows} r LEFT JOIN emrr_attribution a ON a.device = r.device"""


def _apply(deltas: str) -> str:
    return f"""
        INSERT INTO emrr_counts (supplier, status, ineligible, migrated_on, n)
        SELECT supplier, status, ineligible, migrated_on, sum(n)
        FROM ({deltas}) d
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0"""


def _attribution_key(rows: str, sign: str) -> str:
    return f"""
        SELECT r.supplier, m.status, m.ineligible,
               CASE WHEN m.status = '{_MIGRATED}'
                    THEN (m.since AT TIME ZONE 'UTC')::date END AS migrated_on,
               {sign}1 AS n
        FROM {rows} r JOIN migration_meters m ON m.device = r.device"""


def _unattributed(rows: str, sign: str) -> str:
    # A meter without an attribution row counts under no supplier (NULL).
    return f"""
        SELECT NULL::varchar AS supplier, m.status, m.ineligible,
               CASE WHEN m.status = '{_MIGRATED}'
                    THEN (m.since AT TIME ZONE 'UTC')::date END AS migrated_on,
               {sign}1 AS n
        FROM {rows} r JOIN migration_meters m ON m.device = r.device"""


_TRIGGERS: tuple[tuple[str, str, str, str], ...] = (
    # (name, table, event, body)
    ("emrr_meters_insert", "migration_meters", "INSERT", _apply(_key("new_rows", "+"))),
    (
        "emrr_meters_update",
        "migration_meters",
        "UPDATE",
        _apply(_key("old_rows", "-") + " UNION ALL " + _key("new_rows", "+")),
    ),
    ("emrr_meters_delete", "migration_meters", "DELETE", _apply(_key("old_rows", "-"))),
    (
        "emrr_attribution_insert",
        "emrr_attribution",
        "INSERT",
        _apply(_unattributed("new_rows", "-") + " UNION ALL " + _attribution_key("new_rows", "+")),
    ),
    (
        "emrr_attribution_update",
        "emrr_attribution",
        "UPDATE",
        _apply(
            _attribution_key("old_rows", "-") + " UNION ALL " + _attribution_key("new_rows", "+")
        ),
    ),
    (
        "emrr_attribution_delete",
        "emrr_attribution",
        "DELETE",
        _apply(_attribution_key("old_rows", "-") + " UNION ALL " + _unattributed("old_rows", "+")),
    ),
)


def _trigger_ddl(name: str, table: str, event: str, body: str) -> list[str]:
    transition = {"INSERT": "NEW TABLE AS new_rows", "DELETE": "OLD TABLE AS old_rows"}.get(
        event, "OLD TABLE AS old_rows NEW TABLE AS new_rows"
    )
    return [
        f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {body}; RETURN NULL; END $$""",
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"""CREATE TRIGGER {name} AFTER {event} ON {table}
            REFERENCING {transition} FOR EACH STATEMENT EXECUTE FUNCTION {name}()""",
    ]


def install(conn: Connection) -> None:
    """Creates the EMRR tables and, on PostgreSQL, the counter triggers; idempotent.

    Needs ``migration_meters`` (schema migration 5). Counters start from the
    rows present: call inside the transaction that creates the table, or
    :func:`rebuild` afterwards.
    """
    schema.metadata.create_all(conn, tables=list(EMRR_TABLES), checkfirst=True)
    if conn.dialect.name != "postgresql":
        return
    for name, table, event, body in _TRIGGERS:
        for statement in _trigger_ddl(name, table, event, body):
            conn.exec_driver_sql(statement)
    rebuild(conn)


def set_triggers(conn: Connection, *, enabled: bool) -> None:
    """Turns the counter triggers off for a bulk load (then :func:`rebuild`), or on again.

    ``ALTER TABLE`` takes an exclusive lock on both tables until the
    transaction ends: for loading an estate, not for a running service.
    """
    verb = "ENABLE" if enabled else "DISABLE"
    for name, table, _, _ in _TRIGGERS:
        conn.exec_driver_sql(f"ALTER TABLE {table} {verb} TRIGGER {name}")


_RECOUNT = f"""
    SELECT a.supplier, m.status, m.ineligible,
           CASE WHEN m.status = '{_MIGRATED}'
                THEN (m.since AT TIME ZONE 'UTC')::date END AS migrated_on,
           count(*) AS n
    FROM migration_meters m LEFT JOIN emrr_attribution a ON a.device = m.device
    GROUP BY 1, 2, 3, 4"""

_SQLITE_RECOUNT = f"""
    SELECT a.supplier, m.status, m.ineligible,
           CASE WHEN m.status = '{_MIGRATED}' THEN substr(m.since, 1, 10) END AS migrated_on,
           count(*) AS n
    FROM migration_meters m LEFT JOIN emrr_attribution a ON a.device = m.device
    GROUP BY 1, 2, 3, 4"""


def rebuild(conn: Connection) -> None:
    """Replaces the counters with a full recount (PostgreSQL), in the caller's transaction."""
    conn.exec_driver_sql(_LOCK)
    conn.exec_driver_sql("LOCK TABLE migration_meters, emrr_attribution IN SHARE MODE")
    conn.exec_driver_sql("DELETE FROM emrr_counts")
    conn.exec_driver_sql(
        f"INSERT INTO emrr_counts (supplier, status, ineligible, migrated_on, n) {_RECOUNT}"
    )


def compact(conn: Connection, *, wait: bool = False) -> bool:
    """Folds the ledger into one row per key; False if another compaction holds the lock.

    Run it in a transaction of its own (it commits with the caller's). PostgreSQL only.
    """
    locked = conn.exec_driver_sql(_LOCK if wait else _TRY_LOCK).scalar()
    if not wait and not locked:
        return False
    conn.exec_driver_sql(
        """WITH gone AS (DELETE FROM emrr_counts RETURNING *)
           INSERT INTO emrr_counts (supplier, status, ineligible, migrated_on, n)
           SELECT supplier, status, ineligible, migrated_on, sum(n) FROM gone
           GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0"""
    )
    return True


E = TypeVar("E", bound=Enum)


def _member(kind: type[E], stored: str) -> E:
    # migration_meters stores enum members by NAME (store/schema.py, migration 5).
    try:
        return kind[stored]
    except KeyError:
        return kind(stored)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _rows(raw: Iterable[Any]) -> tuple[list[CountRow], list[DailyRow]]:
    # Imported here: the repositories import this module for the writers' notes, and
    # openecos.migration imports the store (a cycle at import time, not at call time).
    from openecos.migration.eligibility import IneligibleReason
    from openecos.migration.emrr import CountRow, DailyRow
    from openecos.migration.record import MigrationStatus

    counts: dict[tuple[str | None, str, str | None], int] = {}
    daily: dict[tuple[str | None, date], int] = {}
    for supplier, status, ineligible, migrated_on, n in raw:
        key = (supplier, status, ineligible)
        counts[key] = counts.get(key, 0) + int(n)
        if status == _MIGRATED and migrated_on is not None:
            day = (supplier, _day(migrated_on))
            daily[day] = daily.get(day, 0) + int(n)
    count_rows = [
        CountRow(
            s,
            _member(MigrationStatus, st),
            None if r is None else _member(IneligibleReason, r),
            n,
        )
        for (s, st, r), n in sorted(counts.items(), key=lambda kv: repr(kv[0]))
        if n != 0
    ]
    daily_rows = [DailyRow(s, d, n) for (s, d), n in sorted(daily.items(), key=repr) if n != 0]
    return count_rows, daily_rows


def emrr_rows(conn: Connection) -> tuple[list[CountRow], list[DailyRow]]:
    """The rows :func:`openecos.migration.report_from_counts` takes, for every supplier.

    PostgreSQL: from the counters (run it in a REPEATABLE READ transaction if
    the caller reads anything else alongside: see :func:`read_report_rows`).
    SQLite: a full recount.
    """
    if conn.dialect.name != "postgresql":
        return recount_rows(conn)
    raw = conn.exec_driver_sql(
        """SELECT supplier, status, ineligible, migrated_on, sum(n)
           FROM emrr_counts GROUP BY 1, 2, 3, 4"""
    )
    return _rows(raw)


def recount_rows(conn: Connection) -> tuple[list[CountRow], list[DailyRow]]:
    """The same rows by a full scan of ``migration_meters`` (tests; small estates)."""
    sql = _RECOUNT if conn.dialect.name == "postgresql" else _SQLITE_RECOUNT
    return _rows(conn.exec_driver_sql(sql))


def attribute(conn: Connection, suppliers: Mapping[Eui64, str | None]) -> None:
    """Sets the supplier each meter counts under (upsert), locking meters first."""
    if not suppliers:
        return
    devices = sorted(d.hex for d in suppliers)
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT device FROM migration_meters WHERE device = ANY(:d) "
                "ORDER BY device FOR SHARE"
            ),
            {"d": devices},
        )
    for device in devices:
        supplier = suppliers[Eui64(bytes.fromhex(device))]
        conn.execute(
            text(
                "INSERT INTO emrr_attribution (device, supplier) VALUES (:d, :s) "
                "ON CONFLICT (device) DO UPDATE SET supplier = excluded.supplier "
                "WHERE emrr_attribution.supplier IS DISTINCT FROM excluded.supplier"
                if conn.dialect.name == "postgresql"
                else "INSERT INTO emrr_attribution (device, supplier) VALUES (:d, :s) "
                "ON CONFLICT (device) DO UPDATE SET supplier = excluded.supplier"
            ),
            {"d": device, "s": supplier},
        )


_WANTED = """
    SELECT d.eui AS device, p.party_id AS supplier
    FROM devices d
    LEFT JOIN registrations r ON r.mpxn = d.mpxn AND r.effective_from <= :at
         AND (r.effective_to IS NULL OR r.effective_to > :at)
    LEFT JOIN mpids p ON p.mpid = r.supplier_mpid
    WHERE {where}"""

_ATTRIBUTE_PG = """
    WITH wanted AS ({wanted}),
    changed AS MATERIALIZED (
        SELECT w.device, w.supplier FROM wanted w
        LEFT JOIN emrr_attribution a ON a.device = w.device
        WHERE a.device IS NULL OR a.supplier IS DISTINCT FROM w.supplier
    ),
    locked AS (
        SELECT m.device FROM migration_meters m JOIN changed c ON c.device = m.device
        ORDER BY m.device FOR SHARE OF m
    )
    INSERT INTO emrr_attribution (device, supplier)
    SELECT c.device, c.supplier FROM changed c LEFT JOIN locked l ON l.device = c.device
    ORDER BY c.device  -- every writer of attribution rows locks them in device order
    ON CONFLICT (device) DO UPDATE SET supplier = excluded.supplier
    """

_ATTRIBUTE_SQLITE = """
    INSERT INTO emrr_attribution (device, supplier)
    SELECT w.device, w.supplier FROM ({wanted}) w
    LEFT JOIN emrr_attribution a ON a.device = w.device
    WHERE a.device IS NULL OR a.supplier IS NOT w.supplier
    ON CONFLICT (device) DO UPDATE SET supplier = excluded.supplier
    """

#: How many devices or MPxNs one attribution statement names (bind parameter limits).
_CHUNK = 5_000
#: Above this many MPxNs written at once, the next sync re-attributes every meter.
_MANY = 50_000


def _attribute_where(conn: Connection, where: str, at: datetime, **params: Any) -> int:
    """Attributes the devices ``where`` selects (SQL over ``d``, a ``devices`` row) at ``at``.

    Set-based, for meters with or without a migration row (an attribution
    made before the row exists is what the row's INSERT trigger counts
    under). On PostgreSQL the migration rows of the meters that move are
    locked first (``FOR SHARE``, module docstring). Returns the devices moved.
    """
    template = _ATTRIBUTE_PG if conn.dialect.name == "postgresql" else _ATTRIBUTE_SQLITE
    statement = text(template.format(wanted=_WANTED.format(where=where)))
    values = {"at": utc("at", at), **params}
    for name, value in values.items():
        if isinstance(value, list):
            statement = statement.bindparams(bindparam(name, expanding=True))
        elif isinstance(value, datetime):  # stored as the store's UTC type stores them
            statement = statement.bindparams(bindparam(name, type_=UtcDateTime))
    done = conn.execute(statement, values)
    return int(done.rowcount or 0)


def attribute_devices(conn: Connection, devices: Sequence[Eui64], at: datetime) -> int:
    """Attributes ``devices`` to their registered supplier at ``at`` (e.g. at enrolment)."""
    moved = 0
    names = sorted({d.hex for d in devices})
    for start in range(0, len(names), _CHUNK):
        moved += _attribute_where(conn, "d.eui IN :devices", at, devices=names[start:][:_CHUNK])
    return moved


def attribute_mpxns(conn: Connection, mpxns: Sequence[str], at: datetime) -> int:
    """Attributes the devices serving ``mpxns`` at ``at`` (their registrations changed)."""
    moved = 0
    names = sorted(set(mpxns))
    for start in range(0, len(names), _CHUNK):
        moved += _attribute_where(conn, "d.mpxn IN :mpxns", at, mpxns=names[start:][:_CHUNK])
    return moved


def refresh_attribution(conn: Connection, at: datetime) -> int:
    """Re-attributes every meter to its registered supplier at ``at``; returns meters moved.

    The registered supplier is the party holding the MPID of the registration
    of the device's MPxN covering ``at`` (store/registrations.py). A batch job
    over the whole estate, locking the meter rows it moves; the incremental
    path is :func:`sync_attribution`.
    """
    return _attribute_where(conn, "TRUE", at)


def registrations_changed(conn: Connection, mpxns: Iterable[str]) -> None:
    """Notes, in the writer's transaction, that the registrations of ``mpxns`` were written.

    Called by every writer of registrations (the repository, the CSV import);
    :func:`sync_attribution` re-attributes their devices at its own instant
    (a writer has no clock, and a registration may start in the future).
    """
    names = sorted(set(mpxns))
    if not names:
        return
    if len(names) > _MANY:
        # A feed this size: one full re-attribution at the next sync is cheaper.
        state = schema.service_state
        conn.execute(delete(state).where(state.c.name == ATTRIBUTED_AT))
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(emrr_pending).on_conflict_do_nothing(index_elements=["mpxn"]),
        [{"mpxn": m} for m in names],
    )


#: The service_state document holding the instant attribution is correct for.
ATTRIBUTED_AT = "emrr.attributed_at"


def mark_attributed(conn: Connection, at: datetime) -> None:
    """Records that every meter's attribution is its registered supplier at ``at`` (a bulk
    load that wrote them itself), so the next sync looks only at what changed since."""
    _put_attributed_at(conn, utc("at", at))


def _put_attributed_at(conn: Connection, when: datetime) -> None:
    # An upsert: two processes making a database's first sync at once both write it.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {"document": when.isoformat(), "updated_at": when}
    conn.execute(
        dialect.insert(schema.service_state)
        .values(name=ATTRIBUTED_AT, **values)
        .on_conflict_do_update(index_elements=["name"], set_=values)
    )


def sync_attribution(conn: Connection, at: datetime) -> int:
    """Brings every meter's attribution to its registered supplier at ``at``; returns moves.

    Incremental, in the caller's transaction: (1) the MPxNs whose registrations
    were written since (``emrr_pending``, taken with ``DELETE ... RETURNING`` so two
    processes never both take one); (2) the MPxNs with a registration that began
    or ended between the instant of the previous sync (``service_state``
    :data:`ATTRIBUTED_AT`, locked) and ``at`` (indexed on ``effective_from`` and
    ``effective_to``). The first sync of a database re-attributes every meter.
    """
    when = utc("at", at)
    state = schema.service_state
    query = select(state.c.document).where(state.c.name == ATTRIBUTED_AT)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    previous = conn.execute(query).scalar()
    pending = list(conn.execute(delete(emrr_pending).returning(emrr_pending.c.mpxn)).scalars())
    moved = attribute_mpxns(conn, pending, when)
    if previous is None:
        moved += refresh_attribution(conn, when)
        _put_attributed_at(conn, when)
        return moved
    last = datetime.fromisoformat(str(previous))
    low, high = min(last, when), max(last, when)
    if low != high:
        moved += _attribute_where(
            conn,
            """d.mpxn IN (SELECT mpxn FROM registrations
                          WHERE (effective_from > :low AND effective_from <= :high)
                             OR (effective_to > :low AND effective_to <= :high))""",
            when,
            low=low,
            high=high,
        )
    _put_attributed_at(conn, when)
    return moved
