"""The queue of inventory devices the migration engine has yet to enrol.

Theory of operation. The engine gives every inventory device a
``migration_meters`` row (its assessment). Finding the devices without one by
scanning the inventory costs a pass over every device (30 million in GB) each
time; instead every device written to ``devices`` is queued in
``migration_enrol`` *by the database*, in the transaction that inserts it:

- PostgreSQL: a statement-level ``AFTER INSERT`` trigger with a transition
  table (one ``INSERT ... SELECT`` per statement; ``COPY`` fires it too);
- SQLite: a row-level ``AFTER INSERT`` trigger.

So every writer is covered (the repositories, the CSV import's ``COPY``,
anything else), and a device is queued if and only if its insert committed.
Schema migration 7 creates the queue and its triggers and queues the devices
that have no migration row yet.

:func:`take` pops up to ``limit`` queued devices and returns their inventory
rows, in the caller's transaction: the engine assesses them and inserts their
migration rows in that same transaction, so a crash puts them back in the
queue (the ``DELETE`` rolls back) and a commit removes them for good. On
PostgreSQL the queue rows are taken ``FOR UPDATE SKIP LOCKED``, so several
engine processes enrol disjoint devices without waiting for each other. A
queued device that has been deleted since, or already has a row, is dropped
(the engine's insert ignores existing rows). The bulk loader
(:mod:`openecos.store.bulk`), which writes migration rows itself, turns the
trigger off for its load (:func:`set_trigger`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, bindparam, column, text

from openecos.store import schema

_TRIGGER = "devices_enrol"

_POSTGRES_DDL = (
    f"""CREATE OR REPLACE FUNCTION {_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO migration_enrol (device) SELECT eui FROM new_rows
          ON CONFLICT (device) DO NOTHING;
          RETURN NULL;
        END $$""",
    f"DROP TRIGGER IF EXISTS {_TRIGGER} ON devices",
    f"""CREATE TRIGGER {_TRIGGER} AFTER INSERT ON devices
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {_TRIGGER}()""",
)

_SQLITE_DDL = (
    f"DROP TRIGGER IF EXISTS {_TRIGGER}",
    f"""CREATE TRIGGER {_TRIGGER} AFTER INSERT ON devices
        BEGIN INSERT OR IGNORE INTO migration_enrol (device) VALUES (NEW.eui); END""",
)


def install(conn: Connection) -> None:
    """Creates the queue and its trigger, and queues devices with no migration row."""
    schema.metadata.create_all(conn, tables=[schema.migration_enrol], checkfirst=True)
    ddl = _POSTGRES_DDL if conn.dialect.name == "postgresql" else _SQLITE_DDL
    for statement in ddl:
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql(
        """INSERT INTO migration_enrol (device)
           SELECT d.eui FROM devices d
           WHERE NOT EXISTS (SELECT 1 FROM migration_meters m WHERE m.device = d.eui)"""
    )


def set_trigger(conn: Connection, *, enabled: bool) -> None:
    """Turns the queueing trigger off for a bulk load that writes migration rows itself
    (PostgreSQL: ``ALTER TABLE`` locks ``devices`` until the transaction ends)."""
    verb = "ENABLE" if enabled else "DISABLE"
    conn.exec_driver_sql(f"ALTER TABLE devices {verb} TRIGGER {_TRIGGER}")


_TAKE_POSTGRES = """
    WITH taken AS (
        DELETE FROM migration_enrol WHERE device IN (
            SELECT device FROM migration_enrol ORDER BY device
            LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING device
    )
    SELECT t.device AS queued, {columns} FROM taken t LEFT JOIN devices d ON d.eui = t.device
    ORDER BY t.device
"""


def take(conn: Connection, limit: int) -> tuple[int, list[Any]]:
    """Pops up to ``limit`` queued devices: (how many were popped, their inventory rows).

    Call inside the transaction that enrols them (module docstring). Rows are
    ``devices`` rows in EUI order; a popped device no longer in the inventory
    has none.
    """
    if limit <= 0:
        return 0, []
    columns = ", ".join(f"d.{c.name}" for c in schema.devices.c)
    if conn.dialect.name == "postgresql":
        query = text(_TAKE_POSTGRES.format(columns=columns))
    else:
        # One writer at a time (BEGIN IMMEDIATE): select, then delete what was selected.
        query = text(
            f"""SELECT q.device AS queued, {columns} FROM migration_enrol q
                LEFT JOIN devices d ON d.eui = q.device ORDER BY q.device LIMIT :limit"""
        )
    # Typed result columns: the inventory's types decode EUIs, enumerations and flags.
    typed = query.columns(column("queued", String), *schema.devices.c)
    rows = conn.execute(typed, {"limit": limit}).all()
    if rows and conn.dialect.name != "postgresql":
        conn.execute(
            text("DELETE FROM migration_enrol WHERE device IN :devices").bindparams(
                bindparam("devices", expanding=True)
            ),
            {"devices": [r.queued for r in rows]},
        )
    return len(rows), [r for r in rows if r.eui is not None]


def queued(conn: Connection) -> int:
    """How many devices wait to be enrolled."""
    return int(conn.exec_driver_sql("SELECT count(*) FROM migration_enrol").scalar_one())


__all__ = ["install", "queued", "set_trigger", "take"]
