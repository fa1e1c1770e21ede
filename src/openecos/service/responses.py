"""Meters' answers: matched, verified, applied and turned into DUIS messages, exactly once.

Theory of operation. A simulated meter's responses and alerts are durable in
``sim_meter_outputs`` from the moment it sends them (:mod:`.estate`). Each is
processed in ONE transaction that takes it (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so two service processes never process one answer), consumes it
and writes everything that follows, or nothing (a batch of answers shares
one transaction, each in its own SAVEPOINT, so the batch pays one durable
commit):

1. :func:`openecos.cos.matching.read_device_message` (addressed to the TCoS
   or ECoS Party; the command's key), :func:`~openecos.cos.matching.verify_device_message`
   with the meter's DS certificate from the inventory, and
   :func:`~openecos.cos.matching.match_command` against the recorded command;
2. :func:`openecos.cos.outcomes.derive_outcome`: the command's next status,
   the request's lifecycle event, the inventory update, the DUIS messages due;
3. the command and the request move (compare-and-set), the supplier cells the
   meter reports installed are recorded, and the messages are signed and put
   in the recipients' outboxes: the service response (I0, the GBCS payload
   carrying the ExecutionOutcome) or future-dated device alert to the new
   supplier, ChangeOfSupplier to the losing supplier, SecurityCredentialsUpdated
   to the new one. A successful cancellation cancels the meter's pending
   future-dated command and its request.

An answer that cannot be read, matched or believed is consumed and recorded
in the audit log only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from openecos.cos.errors import DeviceMessageProblem, DeviceMessageRefused, IllegalTransition
from openecos.cos.lifecycle import FINAL_STATES, RequestEvent, next_status
from openecos.cos.matching import (
    DeviceMessage,
    match_command,
    read_device_message,
    verify_device_message,
)
from openecos.cos.outcomes import (
    DccAlertDue,
    DeviceAlertDue,
    DueMessage,
    Outcome,
    OutcomeConfig,
    derive_outcome,
)
from openecos.duis import (
    RequestId,
    ResponseCode,
    build_dcc_alert,
    build_future_dated_device_alert,
    build_service_response,
)
from openecos.eui import Eui64
from openecos.gbcs import DecodeError, decode_frame, decode_payload
from openecos.gbcs.codes import KeyUsage
from openecos.gbcs.cs02b import UpdateSecurityCredentialsCommand
from openecos.service.clock import Clock
from openecos.service.identities import ServiceKeys
from openecos.store import (
    IN_FLIGHT_COMMAND_STATUSES,
    CommandRecord,
    CommandStatus,
    NotFound,
    OutboxKind,
    Repositories,
    RequestRecord,
    RequestStatus,
    SimulatedOutput,
    StaleState,
    Store,
    TrustAnchorCell,
    read_transaction,
    schema,
)
from openecos.store._base import Executor
from openecos.store.engine import is_sqlite

log = logging.getLogger(__name__)
ACTOR = "responses"


@dataclass(slots=True, eq=False)
class _Derived:
    """What a meter's answer means, and what it was derived from."""

    data: bytes
    message: DeviceMessage
    command: CommandRecord
    record: RequestRecord
    cells: tuple[TrustAnchorCell, ...]
    outcome: Outcome
    messages: list[tuple[Eui64, OutboxKind, bytes, str | None]] | None = None
    """The DUIS messages due, built and signed ahead (None: build them when writing)."""


class ResponseProcessor:
    """Processes meter outputs (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        keys: ServiceKeys,
        clock: Clock,
        *,
        config: OutcomeConfig | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.config = config or OutcomeConfig()
        self._ahead: _Derived | None = None  # the output being applied, derived ahead

    def process_outputs(self, limit: int = 32) -> int:
        """Processes up to ``limit`` waiting outputs in one transaction; returns how many.

        One durable commit for the batch instead of one per answer; each answer
        is applied in a SAVEPOINT of its own, so a refused one leaves nothing
        but its consumption and audit entry, as when it had a transaction alone.

        On SQLite the cryptography is done before the write transaction
        (:meth:`_derive_ahead`): SQLite has one writer at a time, and intake's
        commits must not wait behind signatures. Inside, each answer whose
        inputs are still as they were read is written as derived; any other is
        derived again there. PostgreSQL's writers do not wait for each other
        (row locks only), and processes sharing the outputs would each derive
        the same ones ahead: there everything is done inside.
        """
        ahead = self._derive_ahead(limit) if is_sqlite(self.store.engine) else {}
        done = 0
        now = self.clock.now()
        with self.store.transaction() as tx:
            while done < limit:
                output = tx.estate.next_output()
                if output is None:
                    break
                tx.estate.consume_output(output.output_id, at=now)
                self._ahead = ahead.get(output.output_id)
                try:
                    with tx.savepoint():
                        self._apply(tx, output, now)
                except DeviceMessageRefused as refused:
                    tx.audit.append(
                        at=now,
                        actor=ACTOR,
                        action="device-message.refused",
                        subject=output.device.hex,
                        details={"problem": refused.problem.value, "detail": refused.detail[:500]},
                    )
                finally:
                    self._ahead = None
                done += 1
        return done

    def _derive_ahead(self, limit: int) -> dict[int, _Derived]:
        """The waiting outputs' reading, verification, outcome and signed messages, read in
        one read transaction (no write lock). Outputs it cannot derive are left for later."""
        ahead: dict[int, _Derived] = {}
        now = self.clock.now()
        o = schema.sim_meter_outputs
        with read_transaction(self.store.engine) as conn:
            rx = Repositories.bound(Executor(self.store.engine, conn))
            rows = conn.execute(
                select(o.c.output_id, o.c.message)
                .where(o.c.consumed_at.is_(None))
                .order_by(o.c.output_id)
                .limit(limit)
            ).all()
            for output_id, message in rows:
                try:
                    derived = self._derive(rx, bytes(message))
                except DeviceMessageRefused:
                    continue  # refused again, and recorded, in the write transaction
                derived.messages = [
                    self._message(due, derived.record.request_id, now)
                    for due in derived.outcome.due
                ]
                ahead[int(output_id)] = derived
        return ahead

    def _derive(self, tx: Repositories, data: bytes) -> _Derived:
        """Reads, verifies and derives what a meter's answer means (reads only)."""
        message = read_device_message(data, self.keys.parties)
        certificates = tx.certificates.by_subject(message.device, None, KeyUsage.DIGITAL_SIGNATURE)
        if not certificates:
            raise DeviceMessageRefused(
                DeviceMessageProblem.WRONG_CERTIFICATE, f"no DS certificate of {message.device}"
            )
        verify_device_message(message, certificates[0].der)
        try:
            command = tx.commands.get(*message.key)
        except NotFound:
            raise DeviceMessageRefused(
                DeviceMessageProblem.COMMAND_MISMATCH, f"no command {message.key}"
            ) from None
        match_command(message, command)
        try:
            sent = decode_payload(decode_frame(command.payload))
        except DecodeError as exc:  # we built it; a stored command that does not decode
            raise DeviceMessageRefused(DeviceMessageProblem.COMMAND_MISMATCH, str(exc)) from exc
        if not isinstance(sent, UpdateSecurityCredentialsCommand) or command.request_id is None:
            raise DeviceMessageRefused(
                DeviceMessageProblem.COMMAND_MISMATCH, "the command is not a 6.23 command"
            )
        record = tx.requests.get(command.request_id)
        request_id = RequestId(record.originator, record.target, record.counter)
        cells = tx.devices.trust_anchors(message.device)
        outcome = derive_outcome(message, sent, request_id, current_cells=cells, config=self.config)
        return _Derived(data, message, command, record, tuple(cells), outcome)

    def _still_holds(self, tx: Repositories, derived: _Derived) -> bool:
        """Whether what ``derived`` was derived from is unchanged in this transaction."""
        message = derived.message
        try:
            command = tx.commands.get(*message.key)
            record = tx.requests.get(derived.record.request_id)
        except NotFound:
            return False
        return (
            command == derived.command
            and record == derived.record
            and tuple(tx.devices.trust_anchors(message.device)) == derived.cells
        )

    def _apply(self, tx: Repositories, output: SimulatedOutput, now: datetime) -> None:
        # Read, verify and derive everything first; write only when all of it held.
        # The caller's SAVEPOINT holds all of it: no SAVEPOINT per call (Repositories.flat).
        tx = tx.flat()
        derived = self._ahead
        if (
            derived is None
            or derived.data != output.message
            or derived.messages is None
            or not self._still_holds(tx, derived)
        ):
            derived = self._derive(tx, output.message)
        message, command, record, outcome = (
            derived.message,
            derived.command,
            derived.record,
            derived.outcome,
        )

        # -- writes ----------------------------------------------------------------------------
        try:
            tx.commands.transition(
                command.signer,
                command.originator_counter,
                expected=IN_FLIGHT_COMMAND_STATUSES,
                status=outcome.command_status,
                at=now,
                response=output.message,
            )
        except StaleState:
            # Already answered (a duplicate answer to an identical resend): nothing more.
            tx.audit.append(
                at=now,
                actor=ACTOR,
                action="device-message.duplicate",
                subject=record.request_id,
                details={"originator_counter": str(command.originator_counter)},
            )
            return
        self._move_request(tx, record.request_id, record.status, outcome, now)
        if outcome.inventory is not None:
            for cell in outcome.inventory.installed:
                tx.devices.set_trust_anchor(message.device, cell)
        if outcome.cancels_pending:
            self._cancel_pending(tx, message.device, now)
        tx.outbox.put_many(
            derived.messages
            if derived.messages is not None
            else [self._message(due, record.request_id, now) for due in outcome.due],
            at=now,
        )
        tx.audit.append(
            at=now,
            actor=ACTOR,
            action=f"device-{message.kind.value}.applied",
            subject=record.request_id,
            details={
                "event": outcome.event.value,
                "command_status": outcome.command_status.value,
                "originator_counter": str(command.originator_counter),
                "messages": len(outcome.due),
            },
        )

    def _move_request(
        self,
        tx: Repositories,
        request_id: str,
        status: RequestStatus,
        outcome: Outcome,
        now: datetime,
    ) -> None:
        """``status``: the request's status as read in this transaction."""
        if status is RequestStatus.QUEUED:
            # The answer overtook the worker's "sent" mark (another process was faster).
            try:
                status = tx.requests.transition(
                    request_id,
                    expected=status,
                    status=next_status(status, RequestEvent.COMMAND_SENT),
                    at=now,
                ).status
            except StaleState:  # the mark landed since the read: go on from where it is
                status = tx.requests.get(request_id).status
        if status in FINAL_STATES:
            return  # a late answer updates the inventory and the command only
        try:
            target = next_status(status, outcome.event)
        except IllegalTransition as exc:
            tx.audit.append(
                at=now,
                actor=ACTOR,
                action="request.transition-refused",
                subject=request_id,
                details={"reason": str(exc)},
            )
            return
        code = (
            ResponseCode.I0.value
            if outcome.event
            in (
                RequestEvent.RESPONSE_SUCCESS,
                RequestEvent.ALERT_SUCCESS,
                RequestEvent.FUTURE_DATED_ACCEPTED,
            )
            else None
        )
        tx.requests.transition(
            request_id, expected=status, status=target, at=now, response_code=code
        )

    def _cancel_pending(self, tx: Repositories, device: Eui64, now: datetime) -> None:
        pending = tx.commands.in_flight(device)
        if pending is None or pending.status is not CommandStatus.AWAITING_EXECUTION:
            return
        tx.commands.transition(
            pending.signer,
            pending.originator_counter,
            expected=CommandStatus.AWAITING_EXECUTION,
            status=CommandStatus.CANCELLED,
            at=now,
        )
        if pending.request_id is None:
            return
        record = tx.requests.get(pending.request_id)
        if record.status is RequestStatus.FUTURE_DATED_PENDING:
            tx.requests.transition(
                record.request_id,
                expected=record.status,
                status=next_status(record.status, RequestEvent.CANCELLED),
                at=now,
            )
            tx.audit.append(
                at=now,
                actor=ACTOR,
                action="request.cancelled",
                subject=record.request_id,
                details={"originator_counter": str(pending.originator_counter)},
            )

    def _message(
        self, due: DueMessage, request_id: str, now: datetime
    ) -> tuple[Eui64, OutboxKind, bytes, str | None]:
        """A due message, built and signed, as an outbox row."""
        signer = self.keys.dcc_signing
        if isinstance(due, DccAlertDue):
            body = build_dcc_alert(
                alert_code=due.alert_code,
                alert=due.alert,
                at=now,
                signer=signer,
                request_id=due.request_id,
            )
            kind = OutboxKind.ALERT
        elif isinstance(due, DeviceAlertDue):
            body = build_future_dated_device_alert(
                request_id=due.request_id,
                alert_code=due.alert_code,
                gbcs_payload=due.gbcs_payload,
                at=now,
                signer=signer,
            )
            kind = OutboxKind.ALERT
        else:
            body = build_service_response(
                request_id=due.request_id,
                gbcs_payload=due.gbcs_payload,
                at=now,
                signer=signer,
                response_code=due.response_code,
            )
            kind = OutboxKind.RESPONSE
        return due.recipient, kind, body, request_id
