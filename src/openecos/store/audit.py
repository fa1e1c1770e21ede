"""The audit log: append-only, enforced by the database.

Triggers created by migration 2 refuse every UPDATE and DELETE on
``audit_log`` (and TRUNCATE on PostgreSQL), so not even code holding a
connection can rewrite history; the repository offers only append and read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select

from openecos.store import schema
from openecos.store._base import Repository
from openecos.store.errors import InvalidRecord
from openecos.store.records import AuditEntry, utc

_a = schema.audit_log


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        entry_id=int(row.entry_id),
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=row.details,
    )


def _row(
    at: datetime, actor: str, action: str, subject: str, details: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One entry's row, checked: bounded names, JSON details."""
    when = utc("at", at)
    for name, value, limit in (
        ("actor", actor, 128),
        ("action", action, 128),
        ("subject", subject, 255),
    ):
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise InvalidRecord(name, f"expected 1..{limit} characters")
    document = dict(details or {})
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecord("details", f"not JSON: {exc}") from exc
    return {"at": when, "actor": actor, "action": action, "subject": subject, "details": document}


class AuditLog(Repository):
    """Append and read; there is deliberately nothing else."""

    __slots__ = ()

    def append(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Appends one entry. ``details`` must be JSON (str keys, finite numbers)."""
        row = _row(at, actor, action, subject, details)
        with self._db.write() as conn:
            entry_id = conn.execute(insert(_a).values(**row).returning(_a.c.entry_id)).scalar_one()
        return AuditEntry(int(entry_id), row["at"], actor, action, subject, row["details"])

    def append_many(
        self, entries: Sequence[tuple[datetime, str, str, str, Mapping[str, Any]]]
    ) -> None:
        """Appends several ``(at, actor, action, subject, details)`` entries in one statement.

        Each is checked as :meth:`append` checks it before anything is written.
        """
        rows = [
            _row(at, actor, action, subject, details)
            for at, actor, action, subject, details in entries
        ]
        if rows:
            with self._db.write_set() as conn:
                conn.execute(insert(_a), rows)

    def entries(
        self, *, subject: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries in order of appending, after ``after_id``, optionally for one subject."""
        query = select(_a).where(_a.c.entry_id > after_id).order_by(_a.c.entry_id).limit(limit)
        if subject is not None:
            query = query.where(_a.c.subject == subject)
        with self._db.read() as conn:
            return [_entry(row) for row in conn.execute(query)]
