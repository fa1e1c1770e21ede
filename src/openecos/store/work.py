"""A generic work queue that any number of workers claim from, with leases.

Theory of operation: an item is ``Pending`` until ``available_at``, then any
worker may claim it. A claim sets ``claimed_by`` and ``lease_until`` and
increments ``attempts``; the worker must finish (``complete``/``fail``) or
``renew`` before the lease runs out. An item whose lease has run out is
claimable again: a worker that crashed loses its items to the next claimer.

Every call that finishes or renews a claim is fenced by ``(claimed_by,
attempts)``: a worker whose item was taken over gets
:class:`~openecos.store.errors.LeaseLost` instead of overwriting the new
owner's work. (A worker whose lease ran out but whom nobody replaced may
still finish: nobody else holds the item.)

PostgreSQL (the production shape, docs/architecture.md "Scale") picks rows
with ``FOR UPDATE SKIP LOCKED``, so claimers on any number of machines never
block on or double-claim one item. The SQLite fallback claims inside
``BEGIN IMMEDIATE``: correct for one process (and for several, serialised).

At most one *active* (pending or claimed) item exists per ``(queue,
subject)``: a partial unique index refuses a duplicate enqueue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openecos.store import schema
from openecos.store._base import Repository
from openecos.store.enums import WorkStatus
from openecos.store.errors import DuplicateKey, InvalidRecord, LeaseLost
from openecos.store.records import utc

_w = schema.work_items


@dataclass(frozen=True, slots=True)
class WorkClaim:
    """A claimed item: what to do and the fence that proves ownership."""

    item_id: int
    queue: str
    subject: str
    worker: str
    attempt: int
    lease_until: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


def _claim(row: Row[Any]) -> WorkClaim:
    return WorkClaim(
        item_id=int(row.item_id),
        queue=row.queue,
        subject=row.subject,
        worker=row.claimed_by,
        attempt=int(row.attempts),
        lease_until=row.lease_until,
        payload=row.payload,
    )


def _positive(lease: timedelta) -> timedelta:
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise InvalidRecord("lease", "a lease is a positive timedelta")
    return lease


class WorkQueue(Repository):
    """Enqueue, claim with a lease, renew, complete, fail (with optional retry)."""

    __slots__ = ()

    def enqueue(
        self,
        queue: str,
        subject: str,
        payload: Mapping[str, Any],
        *,
        at: datetime,
        available_at: datetime | None = None,
    ) -> int:
        """Adds an item; raises DuplicateKey if ``subject`` is already active in ``queue``."""
        created = utc("at", at)
        try:
            with self._db.write() as conn:
                return int(
                    conn.execute(
                        insert(_w)
                        .values(
                            queue=queue,
                            subject=subject,
                            payload=dict(payload),
                            status=WorkStatus.PENDING,
                            available_at=created
                            if available_at is None
                            else utc("available_at", available_at),
                            attempts=0,
                            created_at=created,
                        )
                        .returning(_w.c.item_id)
                    ).scalar_one()
                )
        except IntegrityError as exc:
            raise DuplicateKey(f"{queue}/{subject} is already queued") from exc

    def enqueue_many(
        self, queue: str, subjects: Sequence[tuple[str, datetime]], payload: Mapping[str, Any]
    ) -> None:
        """Adds one item per ``(subject, at)`` in one statement, each due at its ``at``.

        DuplicateKey (a subject already active) refuses them all.
        """
        if not subjects:
            return
        document = dict(payload)
        try:
            with self._db.write_set() as conn:
                conn.execute(
                    insert(_w),
                    [
                        {
                            "queue": queue,
                            "subject": subject,
                            "payload": document,
                            "status": WorkStatus.PENDING,
                            "available_at": utc("at", at),
                            "attempts": 0,
                            "created_at": utc("at", at),
                        }
                        for subject, at in subjects
                    ],
                )
        except IntegrityError as exc:
            raise DuplicateKey(
                f"one of {len(subjects)} items is already queued in {queue}"
            ) from exc

    def complete_many(self, claims: Sequence[WorkClaim], *, at: datetime) -> list[WorkClaim]:
        """:meth:`complete` for several claims in one statement; returns those taken over.

        Fenced like :meth:`complete`: an item whose ``(claimed_by, attempts)``
        changed is left alone and returned (its new owner finishes it).
        """
        if not claims:
            return []
        finished = utc("at", at)
        with self._db.write_set() as conn:
            done = set(
                conn.execute(
                    update(_w)
                    .where(
                        _w.c.item_id.in_([c.item_id for c in claims]),
                        _w.c.status == WorkStatus.CLAIMED,
                        or_(
                            *(
                                and_(
                                    _w.c.item_id == c.item_id,
                                    _w.c.claimed_by == c.worker,
                                    _w.c.attempts == c.attempt,
                                )
                                for c in claims
                            )
                        ),
                    )
                    .values(status=WorkStatus.DONE, finished_at=finished, lease_until=None)
                    .returning(_w.c.item_id)
                ).scalars()
            )
        return [c for c in claims if c.item_id not in done]

    def claim(
        self, queue: str, worker: str, *, now: datetime, lease: timedelta, limit: int = 1
    ) -> list[WorkClaim]:
        """Claims up to ``limit`` due items (pending, or with an expired lease)."""
        when = utc("now", now)
        until = when + _positive(lease)
        with self._db.write() as conn:
            query = (
                select(_w.c.item_id)
                .where(
                    _w.c.queue == queue,
                    or_(
                        and_(_w.c.status == WorkStatus.PENDING, _w.c.available_at <= when),
                        and_(_w.c.status == WorkStatus.CLAIMED, _w.c.lease_until <= when),
                    ),
                )
                .order_by(_w.c.available_at, _w.c.item_id)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            rows = conn.execute(
                update(_w)
                .where(_w.c.item_id.in_(ids))
                .values(
                    status=WorkStatus.CLAIMED,
                    claimed_by=worker,
                    lease_until=until,
                    attempts=_w.c.attempts + 1,
                )
                .returning(*_w.c)
            ).all()
        return sorted((_claim(row) for row in rows), key=lambda c: c.item_id)

    def renew(self, claim: WorkClaim, *, now: datetime, lease: timedelta) -> WorkClaim:
        """Extends the lease; raises LeaseLost if the item was taken over."""
        until = utc("now", now) + _positive(lease)
        self._fenced(claim, lease_until=until)
        return WorkClaim(
            claim.item_id,
            claim.queue,
            claim.subject,
            claim.worker,
            claim.attempt,
            until,
            claim.payload,
        )

    def complete(self, claim: WorkClaim, *, at: datetime) -> None:
        """Marks the item done; raises LeaseLost if the item was taken over."""
        self._fenced(claim, status=WorkStatus.DONE, finished_at=utc("at", at), lease_until=None)

    def fail(
        self, claim: WorkClaim, *, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        """Gives the item up: pending again from ``retry_at``, or failed for good."""
        if retry_at is None:
            self._fenced(
                claim,
                status=WorkStatus.FAILED,
                finished_at=utc("at", at),
                lease_until=None,
                last_error=error,
            )
        else:
            self._fenced(
                claim,
                status=WorkStatus.PENDING,
                available_at=utc("retry_at", retry_at),
                claimed_by=None,
                lease_until=None,
                last_error=error,
            )

    def status(self, item_id: int) -> WorkStatus:
        with self._db.read() as conn:
            return WorkStatus(
                conn.execute(select(_w.c.status).where(_w.c.item_id == item_id)).scalar_one()
            )

    def _fenced(self, claim: WorkClaim, **values: Any) -> None:
        with self._db.write() as conn:
            done = conn.execute(
                update(_w)
                .where(
                    _w.c.item_id == claim.item_id,
                    _w.c.status == WorkStatus.CLAIMED,
                    _w.c.claimed_by == claim.worker,
                    _w.c.attempts == claim.attempt,
                )
                .values(**values)
            )
        if done.rowcount != 1:
            raise LeaseLost(f"{claim.queue}/{claim.subject}: {claim.worker} no longer holds it")
