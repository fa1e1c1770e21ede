"""Engines and transactions, with the per-dialect settings the invariants need.

SQLite (the embedded default) gets, on every connection: a busy timeout so
writers queue instead of failing; WAL so readers never block the writer;
foreign keys on; ``synchronous=FULL`` so a committed signing counter survives
power loss, not only a process crash. The ``sqlite3`` module's own
transaction handling is switched off and we emit ``BEGIN`` ourselves
(SQLAlchemy's documented recipe for pysqlite): write transactions start with
``BEGIN IMMEDIATE``, taking the write lock up front, so two processes never
both read a counter and then both fail to upgrade (or both write it).

PostgreSQL runs at READ COMMITTED; the repositories take row locks
(``UPDATE ... RETURNING``, ``FOR UPDATE SKIP LOCKED``) or advisory locks where
they need them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

#: How long a SQLite writer waits for the lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000

_BEGIN_OPTION = "openecos_sqlite_begin"


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``sqlite:///path.db`` or ``postgresql+psycopg://...``.

    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (see module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that may write; commits on success, rolls back on error.

    SQLite: ``BEGIN IMMEDIATE`` (one writer at a time, waiting up to the busy
    timeout). PostgreSQL: an ordinary READ COMMITTED transaction.
    """
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (SQLite: deferred, so it never waits for writers)."""
    with engine.connect() as conn:
        if is_sqlite(conn):
            conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn
