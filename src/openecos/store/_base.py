"""What every repository shares: where its statements run, and error mapping.

A repository runs either in transactions of its own (bound to the engine:
each method call is one transaction) or inside a caller's transaction (bound
to a connection by :meth:`openecos.store.Store.transaction`; each method
call is then a SAVEPOINT, so a refused write leaves the caller's transaction
usable).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from openecos.store.engine import read_transaction, write_transaction

IntegrityKind = Literal["unique", "foreign_key", "check", "not_null", "other"]


class Executor:
    """Hands out a connection in a transaction: the engine's or the caller's."""

    __slots__ = ("connection", "engine", "flat")

    def __init__(
        self, engine: Engine, connection: Connection | None = None, *, flat: bool = False
    ) -> None:
        self.engine = engine
        self.connection = connection
        self.flat = flat
        """In a caller's transaction, write without a SAVEPOINT per call: for a caller that
        has its own SAVEPOINT around the calls and lets any refused write end it."""

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self.connection is None:
            with write_transaction(self.engine) as conn:
                yield conn
        elif self.flat:
            yield self.connection
        else:
            with self.connection.begin_nested():
                yield self.connection

    @contextmanager
    def write_set(self) -> Iterator[Connection]:
        """For one set-wise statement: the caller's transaction as it is, no SAVEPOINT.

        A set-wise statement is all or nothing by itself; a caller that must go
        on after a refusal isolates the rows itself (on PostgreSQL a failed
        statement ends the caller's transaction).
        """
        if self.connection is None:
            with write_transaction(self.engine) as conn:
                yield conn
        else:
            yield self.connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        if self.connection is None:
            with read_transaction(self.engine) as conn:
                yield conn
        else:
            yield self.connection


class Repository:
    """Base of the repositories: holds the :class:`Executor`."""

    __slots__ = ("_db",)

    def __init__(self, db: Executor) -> None:
        self._db = db


def integrity_kind(exc: IntegrityError) -> IntegrityKind:
    """Which rule a database refused a write for, on SQLite and PostgreSQL."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # psycopg: SQLSTATE class 23
        return {
            "23505": "unique",
            "23503": "foreign_key",
            "23514": "check",
            "23502": "not_null",
        }.get(sqlstate, "other")  # type: ignore[return-value]
    message = str(orig)
    if "UNIQUE constraint failed" in message or "PRIMARY KEY" in message:
        return "unique"
    if "FOREIGN KEY constraint failed" in message:
        return "foreign_key"
    if "CHECK constraint failed" in message:
        return "check"
    if "NOT NULL constraint failed" in message:
        return "not_null"
    return "other"


def constraint_name(exc: IntegrityError) -> str:
    """The violated constraint's name (PostgreSQL) or the message (SQLite)."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name else str(exc.orig)
