"""Small named documents the service keeps (e.g. Threshold Anomaly Detection counts).

A document is read with :meth:`ServiceStateRepository.lock` inside the
caller's transaction (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN
IMMEDIATE`` already serialises writers) and written back with
:meth:`ServiceStateRepository.put` in the same transaction, so concurrent
workers update it one at a time and never lose an update.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from openecos.store import schema
from openecos.store._base import Repository
from openecos.store.records import utc

_s = schema.service_state


class ServiceStateRepository(Repository):
    """Named text documents, locked for update by their writer."""

    __slots__ = ()

    def lock(self, name: str) -> str | None:
        """The document (locked until the caller's transaction ends), or None."""
        with self._db.read() as conn:
            query = select(_s.c.document).where(_s.c.name == name)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def put(self, name: str, document: str, *, at: datetime) -> None:
        when = utc("at", at)
        with self._db.write() as conn:
            done = conn.execute(
                update(_s).where(_s.c.name == name).values(document=document, updated_at=when)
            )
            if done.rowcount != 1:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                conn.execute(
                    dialect.insert(_s)
                    .values(name=name, document=document, updated_at=when)
                    .on_conflict_do_update(
                        index_elements=["name"], set_={"document": document, "updated_at": when}
                    )
                )
