"""Migrations: idempotent, safe when processes race, and matching the metadata."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, inspect, select

from openecos.store import LATEST_VERSION, MIGRATIONS, SchemaTooNew, migrate, open_engine, schema
from tests.store import _workers


def test_versions_are_consecutive_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_migrate_twice_applies_each_step_once(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        assert migrate(engine) == LATEST_VERSION
        assert migrate(engine) == LATEST_VERSION
        with engine.connect() as conn:
            versions = conn.execute(
                select(schema.schema_version.c.version).order_by(schema.schema_version.c.version)
            ).scalars()
            assert list(versions) == [m.version for m in MIGRATIONS]
    finally:
        engine.dispose()


def test_migrated_database_matches_metadata(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        migrate(engine)
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == set(schema.metadata.tables)
        for table in schema.metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == set(table.columns.keys()), table.name
        indexes = {i["name"] for i in inspector.get_indexes("commands")}
        assert "uq_commands_in_flight" in indexes
    finally:
        engine.dispose()


def test_newer_database_is_refused(db_url: str) -> None:
    engine = open_engine(db_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(schema.schema_version).values(
                    version=LATEST_VERSION + 1,
                    description="from the future",
                    applied_at=datetime.now(UTC),
                )
            )
        with pytest.raises(SchemaTooNew):
            migrate(engine)
    finally:
        engine.dispose()


def test_processes_migrating_at_once_all_succeed_and_apply_once(db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(3) as pool:
        start = manager.Barrier(3)
        results = [pool.apply_async(_workers.migrate_once, (db_url, start)) for _ in range(3)]
        assert [r.get(timeout=120) for r in results] == [LATEST_VERSION] * 3
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(schema.schema_version))
            assert rows.scalar_one() == len(MIGRATIONS)
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: object) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/pragmas.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()


def test_a_database_from_before_the_region_column_gains_it(db_url: str) -> None:
    from sqlalchemy import text

    from openecos.store.engine import write_transaction

    engine = open_engine(db_url)
    try:
        with write_transaction(engine) as conn:
            schema.schema_version.create(conn)
            for step in MIGRATIONS[:7]:
                step.apply(conn)
                conn.execute(
                    insert(schema.schema_version).values(
                        version=step.version,
                        description=step.description,
                        applied_at=datetime(2026, 1, 1, tzinfo=UTC),
                    )
                )
            # Version 7 as an older OpenECoS made it: devices without the column.
            if "region" in {c["name"] for c in inspect(conn).get_columns("devices")}:
                conn.execute(text("ALTER TABLE devices DROP COLUMN region"))
        assert migrate(engine) == LATEST_VERSION
        columns = {c["name"] for c in inspect(engine).get_columns("devices")}
        assert "region" in columns
    finally:
        engine.dispose()
