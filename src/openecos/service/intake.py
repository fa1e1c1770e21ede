"""Intake: signed DUIS bytes in, a signed acknowledgement out, the request recorded first.

Theory of operation (docs/architecture.md, data flow 1; "a request
acknowledged is a request recorded"):

1. :func:`openecos.duis.receive_update_security_credentials_cos`: size cap,
   hardened parse, DUIS XSD, XMLDSig with the signing certificate looked up
   in the store (``X509IssuerSerial``);
2. :func:`openecos.duis.check_signer_binding`: the certificate belongs to
   the RequestID's originator, is an XML-signing certificate, is valid now
   and chains to a trust anchor;
3. one transaction: the originator's RequestID counter advances (a replayed
   or reordered RequestID is refused here, atomically, across processes), the
   request is recorded as Acknowledged with its raw signed XML, a work item
   is queued for the workers, and an audit entry is written;
4. only after that transaction has committed is the I99 acknowledgement
   built and returned.

Step 3 is group-committed (:mod:`openecos.service.group_commit`): requests
arriving together share one transaction and one disk flush, written set-wise
(one statement per round of RequestID counters, one each for the requests,
their work items and their audit entries, whatever the batch's size), and
each is acknowledged only once that transaction committed. A request whose
counter does not advance is refused alone; any other refused write sends the
batch through the one-SAVEPOINT-per-request path instead.
Signing certificates are looked up in the store once per (issuer, serial):
the store never changes a certificate it holds.

Any failure answers an error acknowledgement with the failure's DUIS code
and records nothing but an audit entry: no request, no counter advance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from openecos.cos.lifecycle import RequestEvent, next_status
from openecos.duis import (
    DEFAULT_MAX_SIZE,
    CounterNotIncreasing,
    DuisError,
    DuisSchema,
    RequestId,
    ResponseCode,
    build_acknowledgement,
    check_signer_binding,
    parse_document,
    receive_update_security_credentials_cos,
)
from openecos.duis.request import read_header
from openecos.service.clock import Clock
from openecos.service.group_commit import GroupCommit, SetWise
from openecos.service.identities import ServiceKeys, ServiceTrust
from openecos.store import (
    CounterNotAdvanced,
    NotFound,
    Repositories,
    RequestRecord,
    RequestStatus,
    Store,
)

#: The work queue of acknowledged 6.23 requests (subject: the RequestID).
REQUEST_QUEUE = "cos-6.23"
ACTOR = "intake"
#: Signing certificates remembered by (issuer, serial); beyond this the memory starts again.
_KNOWN_CERTIFICATES_MAX = 4096


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What intake answered: the signed acknowledgement and its code."""

    acknowledgement: bytes
    response_code: ResponseCode
    request_id: str | None


class Intake:
    """Receives 6.23 requests (see the module docstring). Thread-safe."""

    def __init__(
        self,
        store: Store,
        schema: DuisSchema,
        keys: ServiceKeys,
        trust: ServiceTrust,
        clock: Clock,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.store = store
        self.schema = schema
        self.keys = keys
        self.trust = trust
        self.clock = clock
        self.max_size = max_size
        self._commits = GroupCommit(store, set_wise=SetWise(_record_many, _record_one))
        self._certificates: dict[tuple[str, int], bytes] = {}

    def _resolve(self, issuer: str, serial: int) -> bytes | None:
        der = self._certificates.get((issuer, serial))
        if der is not None:
            return der
        try:
            der = self.store.certificates.by_issuer_serial(issuer, serial).der
        except NotFound:
            return None  # not remembered: it may be added later
        if len(self._certificates) >= _KNOWN_CERTIFICATES_MAX:
            self._certificates.clear()
        self._certificates[(issuer, serial)] = der
        return der

    def receive(self, data: bytes) -> IntakeResult:
        """Steps 1-4, waiting in this thread for the commit."""
        now = self.clock.now()
        verified = self._verify(data, now)
        if isinstance(verified, _Refused):
            return self._refuse(verified, data, now)
        try:
            self._commits.submit(verified)
        except DuisError as exc:
            return self._refuse(_Refused(exc, verified.request_id), data, now)
        return self._acknowledge(verified.request_id, now)

    async def receive_async(self, data: bytes) -> IntakeResult:
        """Steps 1-4 for an event loop: the CPU work here, the commit awaited.

        Verifying and signing on the loop's own thread, instead of in one of many
        threads, spares every request a wait for Python's GIL behind the others;
        the commit (a disk flush) is led by the group commit's thread.
        """
        now = self.clock.now()
        verified = self._verify(data, now)
        if isinstance(verified, _Refused):
            return await asyncio.to_thread(self._refuse, verified, data, now)
        try:
            await asyncio.wrap_future(self._commits.submit_later(verified))
        except DuisError as exc:
            refused = _Refused(exc, verified.request_id)
            return await asyncio.to_thread(self._refuse, refused, data, now)
        return self._acknowledge(verified.request_id, now)

    def _verify(self, data: bytes, now: datetime) -> _Accepted | _Refused:
        """Steps 1 and 2: what to record, or the refusal."""
        request_id: RequestId | None = None
        try:
            received = receive_update_security_credentials_cos(
                data,
                schema=self.schema,
                resolve_certificate=self._resolve,
                max_size=self.max_size,
            )
            request = received.request
            request_id = request.header.request_id
            certificate = received.signature.certificate_der
            if certificate is None:  # our resolver always returns DER
                raise DuisError("the signing certificate is unknown")
            check_signer_binding(
                certificate,
                request_id.originator,
                at=now,
                anchors=self.trust.anchors,
                policies=self.trust.policies,
                intermediates=self.trust.intermediates,
            )
        except DuisError as exc:
            return _Refused(exc, request_id)
        record = RequestRecord(
            originator=request_id.originator,
            target=request_id.target,
            counter=request_id.counter,
            service_reference=request.header.service_reference,
            service_reference_variant=request.header.service_reference_variant,
            received_at=now,
            raw_xml=bytes(data),
            status=next_status(RequestStatus.RECEIVED, RequestEvent.ACKNOWLEDGED),
            execution_at=request.body.execution_date_time,
        )
        return _Accepted(record, request.body.kind.value, now, request_id)

    def _refuse(self, refused: _Refused, data: bytes, now: datetime) -> IntakeResult:
        """The error acknowledgement, after an audit entry (nothing else is recorded)."""
        exc, request_id = refused.error, refused.request_id
        if request_id is None:
            request_id = _best_effort_request_id(data, self.max_size)
        self.store.audit.append(
            at=now,
            actor=ACTOR,
            action="request.refused",
            subject=request_id.duis if request_id is not None else "-",
            details={
                "failure": exc.failure.value,
                "response_code": exc.response_code.value,
                "reason": str(exc)[:500],
            },
        )
        return IntakeResult(
            build_acknowledgement(
                request_id=request_id,
                response_code=exc.response_code,
                at=now,
                signer=self.keys.dcc_signing,
            ),
            exc.response_code,
            None if request_id is None else request_id.duis,
        )

    def _acknowledge(self, request_id: RequestId, now: datetime) -> IntakeResult:
        """Step 4: the I99, built only once the request is committed."""
        return IntakeResult(
            build_acknowledgement(
                request_id=request_id,
                response_code=ResponseCode.I99,
                at=now,
                signer=self.keys.dcc_signing,
            ),
            ResponseCode.I99,
            request_id.duis,
        )


@dataclass(frozen=True, slots=True)
class _Refused:
    """A request refused before anything was recorded, and its RequestID if it was read."""

    error: DuisError
    request_id: RequestId | None


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A verified request, to be recorded (step 3)."""

    record: RequestRecord
    kind: str
    at: datetime
    request_id: RequestId


def _record_one(tx: Repositories, accepted: _Accepted) -> None:
    """Step 3 for one request (the group commit's per-request path)."""
    record, now = accepted.record, accepted.at
    try:
        tx.requests.advance_counter(record.originator, record.counter)
    except CounterNotAdvanced as exc:
        raise CounterNotIncreasing(str(exc)) from exc
    tx.requests.add(record)
    tx.work.enqueue(REQUEST_QUEUE, record.request_id, {}, at=now)
    tx.audit.append(
        at=now,
        actor=ACTOR,
        action="request.acknowledged",
        subject=record.request_id,
        details={"kind": accepted.kind},
    )


def _record_many(tx: Repositories, batch: Sequence[_Accepted]) -> list[BaseException | None]:
    """Step 3 for a batch, set-wise; per request None or its refusal (nothing written for it)."""
    lasts = tx.requests.advance_counters([(a.record.originator, a.record.counter) for a in batch])
    outcomes: list[BaseException | None] = []
    accepted: list[_Accepted] = []
    for a, last in zip(batch, lasts, strict=True):
        if last is None:
            accepted.append(a)
            outcomes.append(None)
        else:
            refusal = CounterNotAdvanced(a.record.originator.duis, a.record.counter, last)
            outcomes.append(CounterNotIncreasing(str(refusal)))
    tx.requests.add_many([a.record for a in accepted])
    tx.work.enqueue_many(REQUEST_QUEUE, [(a.record.request_id, a.at) for a in accepted], {})
    tx.audit.append_many(
        [
            (a.at, ACTOR, "request.acknowledged", a.record.request_id, {"kind": a.kind})
            for a in accepted
        ]
    )
    return outcomes


def _best_effort_request_id(data: bytes, max_size: int) -> RequestId | None:
    """The RequestID of a refused message, when it can be read at all (for the error ack)."""
    try:
        return read_header(parse_document(data, max_size=max_size)).request_id
    except DuisError:
        return None
