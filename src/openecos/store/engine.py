"""Engines and transactions, with the per-dialect settings the invariants need.

SQLite (the embedded default) gets, on every connection: a busy timeout so
writers queue instead of failing; WAL so readers never block the writer;
foreign keys on; ``synchronous=FULL`` so a committed signing counter survives
power loss, not only a process crash. The ``sqlite3`` module's own
transaction handling is switched off and we emit ``BEGIN`` ourselves
(SQLAlchemy's documented recipe for pysqlite): write transactions start with
``BEGIN IMMEDIATE``, taking the write lock up front, so two processes never
both read a counter and then both fail to upgrade (or both write it).

Writers queue for the write lock instead of polling for it
(:func:`write_transaction`): SQLite's busy handler waits by sleeping (1, 2,
5, 10 ... 100 ms) and retrying, so writers colliding on a lock held for a
millisecond would each lose many to sleep. Threads of one process queue on a
lock of the engine's own; processes on one database file queue on an
exclusive ``flock`` of ``<database>-writer.lock`` beside it, which the kernel
hands over as soon as it is released (and releases if its holder dies). Both
are taken before ``BEGIN IMMEDIATE``; the busy timeout still covers any
writer that does not take them (another tool on the same file).

PostgreSQL runs at READ COMMITTED; the repositories take row locks
(``UPDATE ... RETURNING``, ``FOR UPDATE SKIP LOCKED``) or advisory locks where
they need them.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

try:
    import fcntl
except ImportError:  # not POSIX: processes fall back to SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]
from sqlalchemy.engine import make_url

#: How long a SQLite writer waits for the lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000

_BEGIN_OPTION = "openecos_sqlite_begin"
_DURABLE_OPTION = "openecos_durable"


class _WriterLock:
    """The in-process lock and, for a database file, the inter-process ``flock``."""

    def __init__(self, lock_file: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # re-entrant within a thread: SQLite decides, as it always did
        self._fd: int | None = None
        if lock_file is not None and fcntl is not None:
            self._fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            try:
                if self._fd is not None and self._depth == 1:
                    fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without holding the GIL
                try:
                    yield
                finally:
                    if self._fd is not None and self._depth == 1:
                        fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                self._depth -= 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# One writer lock per SQLite engine (see the module docstring).
_writer_locks: weakref.WeakKeyDictionary[Engine, _WriterLock] = weakref.WeakKeyDictionary()
_writer_locks_guard = threading.Lock()


def _writer_lock(engine: Engine) -> _WriterLock | None:
    if engine.dialect.name != "sqlite":
        return None
    lock = _writer_locks.get(engine)
    if lock is None:
        with _writer_locks_guard:
            lock = _writer_locks.get(engine)
            if lock is None:
                database = engine.url.database
                on_disk = database not in (None, "", ":memory:") and "mode=memory" not in str(
                    engine.url
                )
                lock = _WriterLock(f"{database}-writer.lock" if on_disk else None)
                _writer_locks[engine] = lock
                weakref.finalize(engine, lock.close)
    return lock


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
    options = conn.get_execution_options()
    mode = options.get(_BEGIN_OPTION, "IMMEDIATE")
    if mode == "IMMEDIATE":
        # Set for every write transaction, so a pooled connection never carries a
        # relaxed level into a durable one (it cannot change inside a transaction).
        level = "FULL" if options.get(_DURABLE_OPTION, True) else "NORMAL"
        conn.exec_driver_sql(f"PRAGMA synchronous = {level}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that may write; commits on success, rolls back on error.

    SQLite: ``BEGIN IMMEDIATE`` (one writer at a time: queued on the engine's
    writer lock within a process, waiting up to the busy timeout across
    processes). PostgreSQL: an ordinary READ COMMITTED transaction.

    ``durable=False`` commits without waiting for the disk flush (SQLite
    ``synchronous=NORMAL`` in WAL mode, PostgreSQL ``synchronous_commit=off``):
    the transaction survives a crash of this process, and is atomic and in
    order with every other, but a power loss may undo it together with the
    transactions after it. Only for state nothing durable depends on being
    flushed first (the simulated meters); never for the service's records.
    """
    lock = _writer_lock(engine)
    with lock.held() if lock is not None else contextlib.nullcontext(), engine.connect() as conn:
        if not durable:
            conn.execution_options(**{_DURABLE_OPTION: False})
        with conn.begin():
            if not durable and not is_sqlite(conn):
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (SQLite: deferred, so it never waits for writers)."""
    with engine.connect() as conn:
        if is_sqlite(conn):
            conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn
