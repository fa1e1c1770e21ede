"""DUIS service requests and the per-originator RequestID counter.

A request is recorded before it is acknowledged (docs/architecture.md:
"a request acknowledged is a request recorded"), raw signed XML included.
Its status moves by compare-and-set (:meth:`RequestRepository.transition`):
the allowed transitions are the decision code's table, the store only makes
each move atomic and refuses a move from a state the row is no longer in.

Replay and reorder protection: the counter part of a DUIS RequestID must be
strictly greater than the last one accepted from the same originator.
:meth:`RequestRepository.advance_counter` does that as one conditional
upsert, so two API processes cannot both accept the same counter. Run it in
the same transaction as :meth:`RequestRepository.add` (``Store.transaction``)
so a refused request leaves no trace and an accepted one is recorded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from openecos.eui import Eui64
from openecos.store import schema
from openecos.store._base import Repository
from openecos.store.enums import RequestStatus
from openecos.store.errors import CounterNotAdvanced, DuplicateKey, NotFound, StaleState
from openecos.store.records import RequestRecord, u64, utc

_rq, _rc = schema.requests, schema.request_counters

_UNSET: Any = object()


def _request(row: Row[Any]) -> RequestRecord:
    return RequestRecord(
        originator=row.originator,
        target=row.target,
        counter=row.counter,
        service_reference=row.service_reference,
        service_reference_variant=row.service_reference_variant,
        received_at=row.received_at,
        raw_xml=bytes(row.raw_xml),
        status=row.status,
        execution_at=row.execution_at,
        response_code=row.response_code,
        cos_party=row.cos_party,
        updated_at=row.updated_at,
    )


def _request_row(request: RequestRecord) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "originator": request.originator,
        "target": request.target,
        "counter": request.counter,
        "service_reference": request.service_reference,
        "service_reference_variant": request.service_reference_variant,
        "received_at": request.received_at,
        "raw_xml": request.raw_xml,
        "status": request.status,
        "execution_at": request.execution_at,
        "response_code": request.response_code,
        "cos_party": request.cos_party,
        "updated_at": request.updated_at,
    }


class RequestRepository(Repository):
    """Requests as received, their lifecycle status, and RequestID counters."""

    __slots__ = ()

    def add(self, request: RequestRecord) -> None:
        """Records a request; raises DuplicateKey if its RequestID is known."""
        try:
            with self._db.write() as conn:
                conn.execute(_rq.insert().values(**_request_row(request)))
        except IntegrityError as exc:
            raise DuplicateKey(f"request {request.request_id} already recorded") from exc

    def add_many(self, requests: Sequence[RequestRecord]) -> None:
        """Records several requests in one statement; DuplicateKey refuses them all."""
        if not requests:
            return
        try:
            with self._db.write_set() as conn:
                conn.execute(_rq.insert(), [_request_row(r) for r in requests])
        except IntegrityError as exc:
            raise DuplicateKey(f"one of {len(requests)} requests is already recorded") from exc

    def get(self, request_id: str) -> RequestRecord:
        with self._db.read() as conn:
            row = conn.execute(select(_rq).where(_rq.c.request_id == request_id)).first()
        if row is None:
            raise NotFound(f"no request {request_id}")
        return _request(row)

    def transition(
        self,
        request_id: str,
        *,
        expected: RequestStatus | Collection[RequestStatus],
        status: RequestStatus,
        at: datetime,
        response_code: str | None = _UNSET,
        cos_party: Eui64 | None = _UNSET,
    ) -> RequestRecord:
        """Moves a request to ``status`` if it is in ``expected``; raises StaleState.

        ``response_code`` and ``cos_party`` are written when given.
        """
        allowed = {expected} if isinstance(expected, RequestStatus) else set(expected)
        values: dict[str, Any] = {"status": status, "updated_at": utc("at", at)}
        if response_code is not _UNSET:
            values["response_code"] = response_code
        if cos_party is not _UNSET:
            values["cos_party"] = cos_party
        with self._db.write() as conn:
            done = conn.execute(
                update(_rq)
                .where(_rq.c.request_id == request_id, _rq.c.status.in_(sorted(allowed)))
                .values(**values)
            )
            row = conn.execute(select(_rq).where(_rq.c.request_id == request_id)).first()
        if row is None:
            raise NotFound(f"no request {request_id}")
        if done.rowcount != 1:
            raise StaleState(
                f"request {request_id} is {row.status.value}, not in {sorted(allowed)}"
            )
        return _request(row)

    def transition_many(
        self,
        request_ids: Sequence[str],
        *,
        expected: RequestStatus,
        status: RequestStatus,
        at: datetime,
        cos_party: Eui64 | None = _UNSET,
    ) -> set[str]:
        """:meth:`transition` for several requests in one statement; returns those moved.

        A request not in ``expected`` is left as it is (the caller decides whether
        that is a stale read to retry one by one, or already done by someone else).
        """
        if not request_ids:
            return set()
        values: dict[str, Any] = {"status": status, "updated_at": utc("at", at)}
        if cos_party is not _UNSET:
            values["cos_party"] = cos_party
        with self._db.write_set() as conn:
            return set(
                conn.execute(
                    update(_rq)
                    .where(_rq.c.request_id.in_(list(request_ids)), _rq.c.status == expected)
                    .values(**values)
                    .returning(_rq.c.request_id)
                ).scalars()
            )

    def get_many(self, request_ids: Sequence[str]) -> dict[str, RequestRecord]:
        """The requests that exist among ``request_ids``, by RequestID."""
        if not request_ids:
            return {}
        with self._db.read() as conn:
            rows = conn.execute(select(_rq).where(_rq.c.request_id.in_(list(request_ids))))
            return {row.request_id: _request(row) for row in rows}

    def find(
        self,
        *,
        status: RequestStatus | None = None,
        target: Eui64 | None = None,
        limit: int = 1000,
    ) -> list[RequestRecord]:
        """Requests oldest first, filtered by status and/or target device."""
        query = select(_rq).order_by(_rq.c.received_at, _rq.c.request_id).limit(limit)
        if status is not None:
            query = query.where(_rq.c.status == status)
        if target is not None:
            query = query.where(_rq.c.target == target)
        with self._db.read() as conn:
            return [_request(row) for row in conn.execute(query)]

    def advance_counter(self, originator: Eui64, counter: int) -> None:
        """Accepts ``counter`` from ``originator`` only if it exceeds the last one.

        Raises CounterNotAdvanced (a replay or a reordered request) otherwise.
        """
        u64("counter", counter)
        with self._db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(_rc).values(originator=originator, last_counter=counter)
            stmt = stmt.on_conflict_do_update(
                index_elements=[_rc.c.originator],
                set_={"last_counter": stmt.excluded.last_counter},
                where=_rc.c.last_counter < stmt.excluded.last_counter,
            ).returning(_rc.c.last_counter)
            if conn.execute(stmt).first() is None:
                last = conn.execute(
                    select(_rc.c.last_counter).where(_rc.c.originator == originator)
                ).scalar_one()
                raise CounterNotAdvanced(originator.duis, counter, last)

    def advance_counters(self, requests: Sequence[tuple[Eui64, int]]) -> list[int | None]:
        """:meth:`advance_counter` for several (originator, counter) pairs, in their order.

        Returns, per pair, None when accepted or the originator's last counter
        when refused (a replay or a reordered request), as if each pair had had
        its own :meth:`advance_counter`. One statement per *round*: round k
        holds each originator's k-th pair, so no statement touches a row twice
        (PostgreSQL forbids it) and an originator's pairs apply in order.
        """
        rounds: list[dict[Eui64, int]] = []
        seen: dict[Eui64, int] = {}
        for index, (originator, counter) in enumerate(requests):
            u64("counter", counter)
            k = seen.get(originator, 0)
            seen[originator] = k + 1
            if k == len(rounds):
                rounds.append({})
            rounds[k][originator] = index
        outcome: list[int | None] = [None] * len(requests)
        refused: list[int] = []
        with self._db.write_set() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            for members in rounds:
                # Rows in one order, so concurrent writers lock them in one order.
                ordered = sorted(members.items(), key=lambda item: item[0].hex)
                stmt = dialect.insert(_rc).values(
                    [
                        {"originator": originator, "last_counter": requests[index][1]}
                        for originator, index in ordered
                    ]
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=[_rc.c.originator],
                    set_={"last_counter": stmt.excluded.last_counter},
                    where=_rc.c.last_counter < stmt.excluded.last_counter,
                ).returning(_rc.c.originator)
                advanced = set(conn.execute(stmt).scalars())
                refused.extend(index for originator, index in ordered if originator not in advanced)
            if refused:
                # The refusal's message names the last counter: read after all rounds, so
                # it is the counter as this batch leaves it (what a caller sees next).
                last: dict[Eui64, int] = dict(
                    conn.execute(
                        select(_rc.c.originator, _rc.c.last_counter).where(
                            _rc.c.originator.in_({requests[i][0] for i in refused})
                        )
                    ).all()
                )
                for index in refused:
                    outcome[index] = int(last[requests[index][0]])
        return outcome

    def last_counter(self, originator: Eui64) -> int | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(_rc.c.last_counter).where(_rc.c.originator == originator)
            ).first()
        return None if row is None else int(row.last_counter)
