"""Operator actions on requests held by Threshold Anomaly Detection: list and release.

Theory of operation (docs/ecos-domain.md §D1). The worker quarantines a 6.23
that would take its user's or the DCC-wide count over a threshold
(:func:`openecos.cos.tad.assess`): the request is Quarantined, the user gets a
``QuarantinedRequest`` DCC alert, the audit log records its
QuarantineEventRef, and nothing is sent. An operator acting on the user's
Exit Quarantine instruction calls :meth:`QuarantineDesk.release`, which in ONE
transaction, holding the TAD document's lock:

1. finds the request's QuarantineEventRef (from its ``request.quarantined``
   audit entry) and takes it out of the held set with
   :func:`openecos.cos.tad.release`, which counts the request, once, at the
   release time;
2. moves the request Quarantined → Queued (lifecycle event *released*);
3. queues it for the workers again, and appends an audit entry.

The worker then re-runs the 6.23 checks (the world may have changed while it
was held) but not TAD: a released request is counted by the release, never a
second time. A second release of the same request finds it no longer held
and raises :class:`NotHeld`, changing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openecos.cos.errors import NotQuarantined
from openecos.cos.lifecycle import RequestEvent, next_status
from openecos.cos.tad import TadConfig, TadState, release
from openecos.errors import OpenEcosError
from openecos.service.clock import Clock
from openecos.service.intake import REQUEST_QUEUE
from openecos.service.worker import TAD_DOCUMENT
from openecos.store import DuplicateKey, Repositories, RequestRecord, RequestStatus, Store

ACTOR = "operator"


class NotHeld(OpenEcosError):
    """The request is not (or no longer) held by Threshold Anomaly Detection."""


@dataclass(frozen=True, slots=True)
class HeldRequest:
    """A quarantined request as an operator sees it."""

    request_id: str
    quarantine_event_ref: int
    breach: str
    at: datetime


def _event_ref(tx: Repositories, request_id: str) -> int | None:
    refs = [
        e.details.get("quarantine_event_ref")
        for e in tx.audit.entries(subject=request_id, limit=1000)
        if e.action == "request.quarantined"
    ]
    ref = refs[-1] if refs else None
    return ref if isinstance(ref, int) else None


class QuarantineDesk:
    """Lists and releases quarantined requests (see the module docstring). Thread-safe."""

    def __init__(self, store: Store, clock: Clock, tad: TadConfig) -> None:
        self.store = store
        self.clock = clock
        self.tad = tad

    def held(self, limit: int = 100) -> list[HeldRequest]:
        """Requests in the Quarantined state, oldest first."""
        found = []
        with self.store.transaction() as tx:
            for record in tx.requests.find(status=RequestStatus.QUARANTINED, limit=limit):
                entries = [
                    e
                    for e in tx.audit.entries(subject=record.request_id, limit=1000)
                    if e.action == "request.quarantined"
                ]
                if not entries:
                    continue
                details = entries[-1].details
                found.append(
                    HeldRequest(
                        record.request_id,
                        int(details["quarantine_event_ref"]),
                        str(details["breach"]),
                        entries[-1].at,
                    )
                )
        return found

    def release(self, request_id: str, *, operator: str = ACTOR) -> RequestRecord:
        """Releases a held request; raises ``NotFound`` (no such request) or :class:`NotHeld`."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            # The TAD lock first: releases and assessments are serialised on it.
            text = tx.service_state.lock(TAD_DOCUMENT)
            record = tx.requests.get(request_id)
            if record.status is not RequestStatus.QUARANTINED:
                raise NotHeld(f"request {request_id} is {record.status}, not Quarantined")
            ref = _event_ref(tx, request_id)
            if ref is None or text is None:
                raise NotHeld(f"request {request_id} has no QuarantineEventRef")
            try:
                state, held = release(TadState.from_json(text), ref, now, self.tad)
            except NotQuarantined as exc:
                raise NotHeld(str(exc)) from exc
            tx.service_state.put(TAD_DOCUMENT, state.to_json(), at=now)
            moved = tx.requests.transition(
                request_id,
                expected=RequestStatus.QUARANTINED,
                status=next_status(RequestStatus.QUARANTINED, RequestEvent.RELEASED),
                at=now,
            )
            try:
                tx.work.enqueue(REQUEST_QUEUE, request_id, {}, at=now)
            except DuplicateKey as exc:
                # The worker that quarantined it has not yet closed its work item; releasing
                # now could leave the request Queued with no item. Nothing is written.
                raise NotHeld(f"request {request_id} is still being processed; retry") from exc
            tx.audit.append(
                at=now,
                actor=ACTOR,
                action="request.released",
                subject=request_id,
                details={
                    "operator": operator,
                    "quarantine_event_ref": held.quarantine_event_ref,
                    "breach": held.breach.value,
                    "user_count": sum(c for _, c in state.user_buckets(held.user_id)),
                    "dcc_count": sum(c for _, c in state.dcc),
                },
            )
        return moved
