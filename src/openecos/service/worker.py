"""The CoS worker: from an acknowledged 6.23 to a command on its way to the meter.

Theory of operation. Intake queues every acknowledged request on
:data:`~openecos.service.intake.REQUEST_QUEUE`. A worker claims items with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so processes on any number
of machines never hold one item at once) and, for each:

1. assembles :class:`openecos.cos.checks.CheckInputs` from the store and runs
   :func:`openecos.cos.checks.check_request`; a failure rejects the request
   and puts a DUIS response with the check's code in the requester's outbox,
   changing nothing else (no counter reserved, no inventory touched);
2. Threshold Anomaly Detection (:func:`openecos.cos.tad.assess`) on the
   persisted counts, in the transaction that moves the request on;
3. routes to the TCoS or ECoS Party (:func:`openecos.cos.routing.route`);
4. reserves the party's originator counter durably
   (:meth:`~openecos.store.SigningCounterRepository.reserve`, committed in its
   own transaction) BEFORE anything is signed;
5. builds, signs and MACs the 0x0107 command through key-store handles;
6. records it as Prepared and the request as Queued in one transaction (the
   database allows one credential-changing command in flight per meter);
7. hands the bytes to the network, then marks command and request Sent.

Crash safety, decided here. A worker killed at any point loses nothing: its
item's lease runs out and another claim resumes it from the request's
recorded state. Killed after step 4, the reserved counter is simply never
used (counters must increase, not be contiguous). Killed after step 6, the
command is Prepared: the resumed claim *resends the recorded bytes
identically* (same counter, same signature) and never signs a second command
for the request; a meter that already had it discards the duplicate as a
replay, and its first answer is in the durable meter-output table. A command
Sent but unanswered after ``response_timeout`` is resent identically too, and
given up (Outcome unknown, request failed with E21) after ``give_up_after``.

Batches. A claim takes up to ``batch`` items and the steps above run for all
of them together, so the batch shares its durable commits: one TAD
transaction, one counter reservation per CoS Party
(:meth:`~openecos.store.SigningCounterRepository.reserve_block`, committed
before anything is signed), one transaction recording every command as
Prepared (each in its own SAVEPOINT, so the in-flight rule refuses one
without undoing the others), and one marking them Sent and completing the
work items. The crash reasoning is unchanged: each item is resumed from its
own recorded state, and reserved values a crash or a refusal leaves unused
are skipped.

A future-dated command the meter accepted waits (AwaitingExecution) for the
meter's 0x00CB alert. If none has come ``alert_deadline`` after the execution
date-time (a meter fault, a lost alert), :meth:`CosWorker.expire_overdue_alerts`
ends the wait: the command's outcome is unknown (OutcomeUnknown: the meter's
cells must be read before anyone relies on them) and the request fails with
E30 (:func:`openecos.cos.outcomes.no_response_outcome`), answered to the
requester. Nothing is left silently pending.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.cos.checks import (
    CheckConfig,
    CheckedRequest,
    CheckInputs,
    CosCheck,
    check_request,
    registration_instant,
)
from openecos.cos.command import MESSAGE_CODE, build_cos_command
from openecos.cos.errors import CosRejected
from openecos.cos.lifecycle import FINAL_STATES, RequestEvent, next_status
from openecos.cos.outcomes import no_response_outcome
from openecos.cos.routing import CosParty
from openecos.cos.tad import TadConfig, TadState, assess
from openecos.duis import (
    DccAlertCode,
    RequestId,
    ResponseCode,
    build_acknowledgement,
    build_dcc_alert,
    parse_document,
    read_update_security_credentials_cos,
)
from openecos.duis.request import ExecutionKind
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.service.clock import Clock
from openecos.service.identities import ServiceKeys, ServiceTrust
from openecos.service.intake import REQUEST_QUEUE
from openecos.service.migration_gate import MigrationGate, UpdateRefused, WaitForMigration
from openecos.smki import SmkiCertificate
from openecos.store import (
    CommandInFlight,
    CommandRecord,
    CommandStatus,
    Device,
    LeaseLost,
    NotFound,
    OutboxKind,
    Repositories,
    RequestRecord,
    RequestStatus,
    StaleState,
    Store,
    WorkClaim,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Sends command bytes to a device over the network (returns at once).
Send = Callable[[Eui64, bytes], None]

ACTOR = "worker"
TAD_DOCUMENT = "tad"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    lease: timedelta = timedelta(seconds=30)
    batch: int = 32
    response_timeout: timedelta = timedelta(seconds=10)
    give_up_after: timedelta = timedelta(minutes=2)
    alert_deadline: timedelta = timedelta(hours=1)
    """How long after a future-dated command's execution date-time its 0x00CB alert may
    take; after that the request fails with E30 and the command's outcome is unknown."""
    tad: TadConfig = field(
        default_factory=lambda: TadConfig(
            default_user_threshold=1_000_000, dcc_threshold=10_000_000
        )
    )
    require_certificates_of_requester: bool = True
    crash_at: str | None = None
    """Fault injection for crash tests: kill this process (SIGKILL) at the named step:
    ``after-reserve``, ``after-prepare`` or ``after-send`` (see :data:`CRASH_POINTS`)."""


#: The steps where :attr:`WorkerSettings.crash_at` can kill the process.
CRASH_POINTS = frozenset({"after-reserve", "after-prepare", "after-send"})


@dataclass(frozen=True, slots=True, eq=False)
class _Decision:
    """A claimed request that passed the checks: what its command is built from."""

    claim: WorkClaim
    record: RequestRecord
    checked: CheckedRequest
    device: Device
    party: CosParty


class DeviceKeyDirectory:
    """Device public keys from the inventory's device certificates (cached; they never change)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[tuple[Eui64, KeyUsage], ec.EllipticCurvePublicKey] = {}

    def public_key(self, device: Eui64, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        key = self._cache.get((device, usage))
        if key is None:
            found = self._store.certificates.by_subject(device, None, usage)
            if not found:
                raise NotFound(f"no {usage.value} certificate of device {device}")
            key = SmkiCertificate.from_der(found[0].der).public_key
            self._cache[(device, usage)] = key
        return key


class CosWorker:
    """Claims acknowledged requests and sends their commands (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        keys: ServiceKeys,
        trust: ServiceTrust,
        clock: Clock,
        send: Send,
        *,
        worker_id: str,
        settings: WorkerSettings | None = None,
        device_keys: DeviceKeyDirectory | None = None,
        gate: MigrationGate | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.trust = trust
        self.clock = clock
        self.send = send
        self.worker_id = worker_id
        self.settings = settings or WorkerSettings()
        self.device_keys = device_keys or DeviceKeyDirectory(store)
        self.gate = gate or MigrationGate(store)
        self.check_config = CheckConfig(
            require_certificates_of_requester=self.settings.require_certificates_of_requester,
            accepted_policies=trust.policies,
        )

    # -- the queue ----------------------------------------------------------------------------

    def process_requests(self) -> int:
        """Claims and processes one batch; returns how many items it handled."""
        claims = self.store.work.claim(
            REQUEST_QUEUE,
            self.worker_id,
            now=self.clock.now(),
            lease=self.settings.lease,
            limit=self.settings.batch,
        )
        finished: list[WorkClaim] = []
        ready: list[_Decision] = []
        if not claims:
            return 0
        # The batch's reads share one read transaction (one BEGIN, not one per read).
        with self.store.reading() as rx:
            records = rx.requests.get_many([c.subject for c in claims])
            for claim in claims:
                try:
                    decision = self._process(rx, claim, records.get(claim.subject))
                except Exception as exc:  # a bug or an outage: retry later, keep the item
                    self._fail(claim, exc)
                    continue
                if decision is None:
                    finished.append(claim)
                else:
                    ready.append(decision)
        sent: list[CommandRecord] = []
        if ready:
            try:
                sent, done = self._dispatch(ready)
                finished.extend(done)
            except Exception as exc:  # the batch's shared work failed: each item retries
                for decision in ready:
                    self._fail(decision.claim, exc)
        self._finish(sent, finished)
        return len(claims)

    def _fail(self, claim: WorkClaim, exc: Exception) -> None:
        if isinstance(exc, WaitForMigration):
            # Not a failure: the migration's outcome decides the route (migration_gate.py).
            now = self.clock.now()
            with contextlib.suppress(LeaseLost):
                self.store.work.fail(
                    claim, at=now, error=str(exc)[:500], retry_at=now + self.gate.wait
                )
            return
        if isinstance(exc, LeaseLost):
            log.warning("lease lost on %s; another worker has it", claim.subject)
            return
        log.error("processing %s failed", claim.subject, exc_info=exc)
        with contextlib.suppress(LeaseLost):
            self.store.work.fail(
                claim,
                at=self.clock.now(),
                error=f"{type(exc).__name__}: {exc}"[:500],
                retry_at=self.clock.now() + timedelta(seconds=1),
            )

    def _process(
        self, rx: Repositories, claim: WorkClaim, request: RequestRecord | None
    ) -> _Decision | None:
        """What the item needs: None when it is finished here, else a decision to dispatch.

        ``rx`` reads in the batch's read transaction; writes go through the store.
        """
        if request is None:
            raise NotFound(f"no request {claim.subject}")
        status = request.status
        if status in FINAL_STATES or status in (
            RequestStatus.COMMAND_SENT,
            RequestStatus.FUTURE_DATED_PENDING,
            RequestStatus.QUARANTINED,
        ):
            return None  # nothing left to do for the queue
        if status is RequestStatus.QUEUED:
            commands = rx.commands.for_request(request.request_id)
            prepared = [c for c in commands if c.status is CommandStatus.PREPARED]
            if prepared:
                # Resumed after a crash: resend the recorded bytes, never re-sign.
                self._send(prepared[-1], request.request_id)
                return None
            if commands:
                self._mark_sent(request.request_id)
                return None
        return self._decide(rx, claim, request)

    # -- the decision -------------------------------------------------------------------------

    def _decide(
        self, rx: Repositories, claim: WorkClaim, record: RequestRecord
    ) -> _Decision | None:
        """Steps 1 and 3: the checks (a refusal is answered here) and the route."""
        now = self.clock.now()
        if self.gate.waiting_in(rx, record.target):
            raise WaitForMigration(record.target)
        request = read_update_security_credentials_cos(parse_document(record.raw_xml))
        body = request.body
        device = _maybe(lambda: rx.devices.get(record.target))
        user = _maybe(lambda: rx.parties.get_user(record.originator))
        in_flight = rx.commands.in_flight(record.target)
        inputs = CheckInputs(
            request=request,
            signer=record.originator,  # intake bound the signing certificate to it
            user=user,
            device=device,
            registered_supplier=rx.registrations.registered_supplier(
                body.import_mpxn, registration_instant(request, now)
            ),
            in_flight_command=None if in_flight is None else in_flight.status,
            now=now,
            trust_anchors=self.trust.anchors,
            config=self.check_config,
        )
        try:
            checked = check_request(inputs)
        except CosRejected as rejected:
            self._reject(record, rejected.response_code, rejected.check.value, rejected.detail)
            return None
        assert device is not None  # DEVICE_KNOWN passed
        try:
            party = self.gate.route(device, self.keys.parties)
        except UpdateRefused as refused:
            # The ETMAD regime refuses it (TCoS retired, or ECoS not live): answer its code
            # and raise the stranded meter for recovery (migration_gate.py).
            self._reject(record, refused.response_code, "regime", refused.reason)
            self.gate.strand(device, request_id=record.request_id, at=now)
            return None
        return _Decision(claim, record, checked, device, party)

    def _dispatch(self, batch: list[_Decision]) -> tuple[list[CommandRecord], list[WorkClaim]]:
        """Steps 2 and 4-6 for a batch; returns the commands to mark Sent and finished claims."""
        now = self.clock.now()
        quarantined = self._quarantined(
            [d.record for d in batch if d.record.status is RequestStatus.ACKNOWLEDGED]
        )
        finished = [d.claim for d in batch if d.record.request_id in quarantined]
        batch = [d for d in batch if d.record.request_id not in quarantined]
        if not batch:
            return [], finished
        # Durable BEFORE any signature exists; a crash from here on only skips the values.
        counters: dict[Eui64, Iterator[int]] = {}
        for party in {d.party.entity_eui for d in batch}:
            wanted = sum(1 for d in batch if d.party.entity_eui == party)
            counters[party] = iter(self.store.signing_counters.reserve_block(party, wanted))
        self._crash_point("after-reserve")
        commands = [self._build(d, next(counters[d.party.entity_eui]), now) for d in batch]

        refused: list[_Decision] = []
        waiting: list[_Decision] = []
        prepared: list[CommandRecord] = []
        try:
            with self.store.transaction() as tx:
                self._record_all_prepared(tx, batch, commands, now)
            prepared = commands
        except (WaitForMigration, CommandInFlight, StaleState):
            # One of them cannot be recorded: nothing was; record them one by one.
            prepared = self._record_each_prepared(batch, commands, now, refused, waiting)
        self._crash_point("after-prepare")
        for decision in waiting:
            self._fail(decision.claim, WaitForMigration(decision.device.eui))
        for decision in refused:
            # Lost a race with another request for the meter: the database said no.
            self._reject(
                decision.record,
                ResponseCode.E062306,
                CosCheck.COMMAND_IN_FLIGHT.value,
                "another credential-changing command is in flight",
            )
            finished.append(decision.claim)
        for command in prepared:
            self.send(command.device, command.payload)
        if prepared:
            self._crash_point("after-send")
        finished.extend(d.claim for d in batch if d not in refused and d not in waiting)
        return prepared, finished

    def _record_each_prepared(
        self,
        batch: list[_Decision],
        commands: list[CommandRecord],
        now: datetime,
        refused: list[_Decision],
        waiting: list[_Decision],
    ) -> list[CommandRecord]:
        """Step 6 one command at a time, each in a SAVEPOINT (the in-flight rule refuses one
        without undoing the others); fills ``refused`` and ``waiting``."""
        prepared: list[CommandRecord] = []
        with self.store.transaction() as tx:
            for decision, command in zip(batch, commands, strict=True):
                try:
                    with tx.savepoint():
                        self._record_prepared(tx, decision, command, now)
                except WaitForMigration:
                    waiting.append(decision)  # a migration started since the decision
                    continue
                except CommandInFlight:
                    # The savepoint took its writes back. A migration's 0x0106: wait for it.
                    if self.gate.blocked_by_migration(decision.device.eui):
                        waiting.append(decision)
                    else:
                        refused.append(decision)
                    continue
                prepared.append(command)
        return prepared

    def _build(self, decision: _Decision, counter: int, now: datetime) -> CommandRecord:
        """Step 5: the signed and MACed 0x0107 command (no I/O but key-store handles)."""
        payload = build_cos_command(
            decision.checked,
            party=decision.party,
            originator_counter=counter,
            signer=self.keys.signer_of(decision.party),
            acb_key_agreement=self.keys.acb_key_agreement,
            device_key_agreement_key=self.device_keys.public_key(
                decision.device.eui, KeyUsage.KEY_AGREEMENT
            ),
        )
        return CommandRecord(
            signer=decision.party.entity_eui,
            originator_counter=counter,
            device=decision.device.eui,
            message_code=MESSAGE_CODE,
            payload=payload,
            created_at=now,
            # A cancellation stops the command in flight; it is not a second change.
            credential_changing=decision.checked.kind is not ExecutionKind.CANCELLATION,
            request_id=decision.record.request_id,
        )

    def _record_all_prepared(
        self,
        tx: Repositories,
        batch: list[_Decision],
        commands: list[CommandRecord],
        now: datetime,
    ) -> None:
        """Step 6 for the whole batch, set-wise: one statement for the commands, one per
        (status, party) for the requests, one for the audit entries. Raises what
        :meth:`_record_prepared` would for the first that cannot be recorded."""
        for command in commands:
            if self.gate.waiting_in(tx, command.device):
                raise WaitForMigration(command.device)
        tx.commands.add_many(commands)
        groups: dict[tuple[RequestStatus, Eui64], list[str]] = {}
        for decision in batch:
            key = (decision.record.status, decision.party.entity_eui)
            groups.setdefault(key, []).append(decision.record.request_id)
        for (current, party), ids in groups.items():
            target = (
                next_status(current, RequestEvent.ACCEPTED)
                if current is RequestStatus.ACKNOWLEDGED
                else current
            )
            moved = tx.requests.transition_many(
                ids, expected=current, status=target, at=now, cos_party=party
            )
            if len(moved) != len(ids):  # moved on since it was read: one by one
                raise StaleState(f"{len(ids) - len(moved)} requests moved on since read")
        tx.audit.append_many(
            [
                (
                    now,
                    ACTOR,
                    "command.prepared",
                    decision.record.request_id,
                    self._prepared_details(decision, command),
                )
                for decision, command in zip(batch, commands, strict=True)
            ]
        )

    def _prepared_details(self, decision: _Decision, command: CommandRecord) -> dict[str, str]:
        return {
            "worker": self.worker_id,
            "signer": decision.party.entity_eui.hex,
            "originator_counter": str(command.originator_counter),
            "device": command.device.hex,
            "kind": decision.checked.kind.value,
        }

    def _record_prepared(
        self, tx: Repositories, decision: _Decision, command: CommandRecord, now: datetime
    ) -> None:
        """Step 6 for one command, inside the batch's transaction."""
        record = decision.record
        if self.gate.waiting_in(tx, command.device):
            raise WaitForMigration(command.device)
        tx.commands.add(command)
        current = tx.requests.get(record.request_id).status
        tx.requests.transition(
            record.request_id,
            expected=current,
            status=next_status(current, RequestEvent.ACCEPTED)
            if current is RequestStatus.ACKNOWLEDGED
            else current,
            at=now,
            cos_party=decision.party.entity_eui,
        )
        tx.audit.append(
            at=now,
            actor=ACTOR,
            action="command.prepared",
            subject=record.request_id,
            details=self._prepared_details(decision, command),
        )

    def _finish(self, sent: list[CommandRecord], claims: list[WorkClaim]) -> None:
        """Step 7's records for a batch, and the finished items completed, in one transaction."""
        if not sent and not claims:
            return
        now = self.clock.now()
        with self.store.transaction() as tx:
            # Set-wise; a command or request no longer Prepared/Queued was answered first
            # (the meter's response was processed before this mark) and stays as it is.
            tx.commands.mark_sent_many(sent, at=now)
            tx.requests.transition_many(
                [c.request_id for c in sent if c.request_id is not None],
                expected=RequestStatus.QUEUED,
                status=next_status(RequestStatus.QUEUED, RequestEvent.COMMAND_SENT),
                at=now,
            )
            lost = tx.work.complete_many(claims, at=now)
        for claim in lost:
            log.warning("lease lost on %s; another worker has it", claim.subject)

    def _crash_point(self, name: str) -> None:
        if self.settings.crash_at == name:
            log.warning("fault injection: killing the process at %s", name)
            os.kill(os.getpid(), signal.SIGKILL)

    def _quarantined(self, records: list[RequestRecord]) -> set[str]:
        """Threshold Anomaly Detection for a batch, in one transaction; the quarantined IDs."""
        if not records:
            return set()
        now = self.clock.now()
        quarantined: set[str] = set()
        with self.store.transaction() as tx:
            text = tx.service_state.lock(TAD_DOCUMENT)
            state = TadState() if text is None else TadState.from_json(text)
            for record in records:
                state, decision = assess(state, record.originator, now, self.settings.tad)
                if not decision.quarantined:
                    continue
                quarantined.add(record.request_id)
                request_id = RequestId(record.originator, record.target, record.counter)
                tx.requests.transition(
                    record.request_id,
                    expected=RequestStatus.ACKNOWLEDGED,
                    status=next_status(RequestStatus.ACKNOWLEDGED, RequestEvent.QUARANTINED),
                    at=now,
                )
                tx.outbox.put(
                    record.originator,
                    OutboxKind.ALERT,
                    build_dcc_alert(
                        alert_code=DccAlertCode.AD1,
                        alert=decision.alert(request_id),
                        at=now,
                        signer=self.keys.dcc_signing,
                        request_id=request_id,
                    ),
                    at=now,
                    request_id=record.request_id,
                )
                tx.audit.append(
                    at=now,
                    actor=ACTOR,
                    action="request.quarantined",
                    subject=record.request_id,
                    details={
                        "breach": str(decision.breach),
                        "quarantine_event_ref": decision.quarantine_event_ref,
                        "user_count": decision.user_count,
                        "dcc_count": decision.dcc_count,
                    },
                )
            tx.service_state.put(TAD_DOCUMENT, state.to_json(), at=now)
        return quarantined

    def _reject(self, record: RequestRecord, code: ResponseCode, check: str, detail: str) -> None:
        now = self.clock.now()
        with self.store.transaction() as tx:
            current = tx.requests.get(record.request_id).status
            self._end_request(tx, record, current, RequestEvent.REJECTED, code, now)
            tx.audit.append(
                at=now,
                actor=ACTOR,
                action="request.rejected",
                subject=record.request_id,
                details={"check": check, "response_code": code.value, "detail": detail[:500]},
            )

    def _end_request(
        self,
        tx: Repositories,
        record: RequestRecord,
        expected: RequestStatus,
        event: RequestEvent,
        code: ResponseCode,
        now: datetime,
    ) -> None:
        """Moves the request on by ``event`` with ``code`` and queues the DCC-signed answer
        to its originator, in the caller's transaction (so both happen or neither)."""
        tx.requests.transition(
            record.request_id,
            expected=expected,
            status=next_status(expected, event),
            at=now,
            response_code=code.value,
        )
        tx.outbox.put(
            record.originator,
            OutboxKind.RESPONSE,
            build_acknowledgement(
                request_id=RequestId(record.originator, record.target, record.counter),
                response_code=code,
                at=now,
                signer=self.keys.dcc_signing,
            ),
            at=now,
            request_id=record.request_id,
        )

    # -- sending ------------------------------------------------------------------------------

    def _send(self, command: CommandRecord, request_id: str) -> None:
        self.send(command.device, command.payload)
        self._crash_point("after-send")
        now = self.clock.now()
        # StaleState: already answered (another process processed the meter's response).
        with contextlib.suppress(StaleState):
            self.store.commands.transition(
                command.signer,
                command.originator_counter,
                expected=CommandStatus.PREPARED,
                status=CommandStatus.SENT,
                at=now,
            )
        self._mark_sent(request_id)

    def _mark_sent(self, request_id: str) -> None:
        with contextlib.suppress(StaleState):  # the answer was processed first
            self.store.requests.transition(
                request_id,
                expected=RequestStatus.QUEUED,
                status=next_status(RequestStatus.QUEUED, RequestEvent.COMMAND_SENT),
                at=self.clock.now(),
            )

    def resend_stale(self) -> int:
        """Resends Sent commands that have waited too long; gives up after ``give_up_after``."""
        now = self.clock.now()
        count = 0
        for command in self.store.commands.find(status=CommandStatus.SENT, limit=100):
            assert command.sent_at is not None
            if now - command.sent_at < self.settings.response_timeout:
                continue
            if now - command.created_at >= self.settings.give_up_after:
                self._give_up(command)
            else:
                self.send(command.device, command.payload)
                with contextlib.suppress(StaleState):
                    self.store.commands.transition(
                        command.signer,
                        command.originator_counter,
                        expected=CommandStatus.SENT,
                        status=CommandStatus.SENT,
                        at=now,
                    )
            count += 1
        return count

    def expire_overdue_alerts(self, limit: int = 100) -> int:
        """Ends the wait of future-dated commands whose alert is overdue (E30); returns how many."""
        now = self.clock.now()
        count = 0
        for command in self.store.commands.find(
            status=CommandStatus.AWAITING_EXECUTION, limit=limit
        ):
            if command.request_id is None:
                continue
            execution_at = self.store.requests.get(command.request_id).execution_at
            if execution_at is None or now < execution_at + self.settings.alert_deadline:
                continue
            self._give_up(command, awaiting_alert=True)
            count += 1
        return count

    def _give_up(self, command: CommandRecord, *, awaiting_alert: bool = False) -> None:
        now = self.clock.now()
        waiting = CommandStatus.AWAITING_EXECUTION if awaiting_alert else CommandStatus.SENT
        pending = (
            RequestStatus.FUTURE_DATED_PENDING if awaiting_alert else RequestStatus.COMMAND_SENT
        )
        with self.store.transaction() as tx:
            try:
                tx.commands.transition(
                    command.signer,
                    command.originator_counter,
                    expected=waiting,
                    status=CommandStatus.OUTCOME_UNKNOWN,
                    at=now,
                )
            except StaleState:
                return
            if command.request_id is None:
                return
            record = tx.requests.get(command.request_id)
            if record.status is not pending:
                return
            request_id = RequestId(record.originator, record.target, record.counter)
            outcome, code = no_response_outcome(request_id, awaiting_alert=awaiting_alert)
            self._end_request(tx, record, pending, outcome.event, code, now)
            tx.audit.append(
                at=now,
                actor=ACTOR,
                action="command.alert-overdue" if awaiting_alert else "command.outcome-unknown",
                subject=record.request_id,
                details={
                    "worker": self.worker_id,
                    "originator_counter": str(command.originator_counter),
                    "response_code": code.value,
                },
            )


def _maybe(get: Callable[[], _T]) -> _T | None:
    try:
        return get()
    except NotFound:
        return None
