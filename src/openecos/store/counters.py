"""Signing counters: reserved durably before the signature exists, never reused.

Invariant (docs/architecture.md): a GBCS originator counter is committed to
the database *before* :meth:`SigningCounterRepository.reserve` returns it, in
a transaction of its own, so a crash after the reservation can only waste a
value, never hand it out twice. Values strictly increase per signing entity
across processes:

- PostgreSQL: one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` takes the
  row lock, increments and returns in one statement; concurrent reservers
  queue on the row lock and each sees the previous commit.
- SQLite: the same upsert inside ``BEGIN IMMEDIATE`` (one writer at a time);
  ``synchronous=FULL`` makes the commit durable before it returns.

Values are unsigned 64-bit and stored biased (see :mod:`openecos.store.types`);
reaching ``2**64 - 1`` raises :class:`~openecos.store.errors.CounterExhausted`.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from openecos.eui import Eui64
from openecos.store import schema
from openecos.store.engine import read_transaction, write_transaction
from openecos.store.errors import CounterExhausted
from openecos.store.records import U64_MAX, u64

_sc = schema.signing_counters


class SigningCounterRepository:
    """Per-entity originator counters. Always its own transaction, by design."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reserve(self, entity: Eui64, *, at_least: int = 1) -> int:
        """Commits and returns the next counter of ``entity``: ``max(last + 1, at_least)``.

        ``at_least`` lets a caller jump forward (e.g. to a time-based floor or
        past a value a device reported); it never moves the counter back.
        """
        u64("at_least", at_least)
        floor = max(at_least, 1)
        with write_transaction(self._engine) as conn:
            is_pg = conn.dialect.name == "postgresql"
            greatest = func.greatest if is_pg else func.max
            stmt = (
                (postgresql if is_pg else sqlite)
                .insert(_sc)
                .values(entity=entity, last_counter=floor)
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[_sc.c.entity],
                set_={"last_counter": greatest(_sc.c.last_counter + 1, stmt.excluded.last_counter)},
                where=_sc.c.last_counter < U64_MAX,
            ).returning(_sc.c.last_counter)
            value = conn.execute(stmt).scalar()
        if value is None:
            raise CounterExhausted(f"signing counter of {entity} is at 2**64 - 1")
        return int(value)

    def reserve_block(self, entity: Eui64, count: int) -> range:
        """Commits and returns ``count`` consecutive counters of ``entity``, in one transaction.

        For a worker about to sign several commands: one durable commit for all
        of them instead of one each. Values it never uses are simply skipped
        (counters must increase, not be contiguous).
        """
        if not isinstance(count, int) or not 1 <= count <= 1_000_000:
            raise ValueError(f"count must be within 1..1000000, got {count!r}")
        with write_transaction(self._engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(_sc).values(entity=entity, last_counter=count)
            stmt = stmt.on_conflict_do_update(
                index_elements=[_sc.c.entity],
                set_={"last_counter": _sc.c.last_counter + count},
                where=_sc.c.last_counter <= U64_MAX - count,
            ).returning(_sc.c.last_counter)
            value = conn.execute(stmt).scalar()
        if value is None:
            raise CounterExhausted(f"signing counter of {entity} cannot advance by {count}")
        return range(int(value) - count + 1, int(value) + 1)

    def last(self, entity: Eui64) -> int | None:
        """The last reserved value, or None if the entity never reserved one."""
        with read_transaction(self._engine) as conn:
            value = conn.execute(select(_sc.c.last_counter).where(_sc.c.entity == entity)).scalar()
        return None if value is None else int(value)
