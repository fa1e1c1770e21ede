"""The outbox: DUIS responses and alerts waiting for each user to pull them.

Consume-once: :meth:`OutboxRepository.take` marks the messages it returns as
consumed in the same transaction, so each message is handed out exactly
once even with several API processes. On PostgreSQL the rows are picked
with ``FOR UPDATE SKIP LOCKED`` (a second consumer skips rows the first is
taking instead of waiting for them); on SQLite ``BEGIN IMMEDIATE`` runs one
consumer at a time. Oldest first by ``message_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update

from openecos.eui import Eui64
from openecos.store import schema
from openecos.store._base import Repository
from openecos.store.enums import OutboxKind
from openecos.store.errors import InvalidRecord
from openecos.store.records import OutboxMessage, utc

_o = schema.outbox


def _message(row: Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        message_id=int(row.message_id),
        user_id=row.user_id,
        kind=row.kind,
        body=bytes(row.body),
        created_at=row.created_at,
        request_id=row.request_id,
    )


class OutboxRepository(Repository):
    """Per-user queue of responses and alerts, consumed once."""

    __slots__ = ()

    def put(
        self,
        user_id: Eui64,
        kind: OutboxKind,
        body: bytes,
        *,
        at: datetime,
        request_id: str | None = None,
    ) -> int:
        """Queues a message for ``user_id``; returns its id."""
        if not isinstance(kind, OutboxKind):
            raise InvalidRecord("kind", "expected an OutboxKind")
        if not isinstance(body, bytes) or not body:
            raise InvalidRecord("body", "expected non-empty bytes")
        with self._db.write() as conn:
            return int(
                conn.execute(
                    insert(_o)
                    .values(
                        user_id=user_id,
                        kind=kind,
                        body=body,
                        request_id=request_id,
                        created_at=utc("at", at),
                    )
                    .returning(_o.c.message_id)
                ).scalar_one()
            )

    def put_many(
        self, messages: Sequence[tuple[Eui64, OutboxKind, bytes, str | None]], *, at: datetime
    ) -> None:
        """Queues several ``(user_id, kind, body, request_id)`` messages in one statement,
        in their order (their ids rise in that order)."""
        created = utc("at", at)
        for _user, kind, body, _request in messages:
            if not isinstance(kind, OutboxKind):
                raise InvalidRecord("kind", "expected an OutboxKind")
            if not isinstance(body, bytes) or not body:
                raise InvalidRecord("body", "expected non-empty bytes")
        if not messages:
            return
        with self._db.write_set() as conn:
            conn.execute(
                insert(_o),
                [
                    {
                        "user_id": user_id,
                        "kind": kind,
                        "body": body,
                        "request_id": request_id,
                        "created_at": created,
                    }
                    for user_id, kind, body, request_id in messages
                ],
            )

    def take(self, user_id: Eui64, *, at: datetime, limit: int = 100) -> list[OutboxMessage]:
        """Returns up to ``limit`` waiting messages, oldest first, and consumes them."""
        when = utc("at", at)
        with self._db.write() as conn:
            query = (
                select(_o)
                .where(_o.c.user_id == user_id, _o.c.consumed_at.is_(None))
                .order_by(_o.c.message_id)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(_o)
                    .where(_o.c.message_id.in_([row.message_id for row in rows]))
                    .values(consumed_at=when)
                )
        return [_message(row) for row in rows]

    def waiting(self, user_id: Eui64) -> int:
        """How many messages wait for ``user_id``."""
        with self._db.read() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(_o.c.user_id == user_id, _o.c.consumed_at.is_(None))
                ).scalar_one()
            )
