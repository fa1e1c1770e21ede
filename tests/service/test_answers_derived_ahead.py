"""Meters' answers are verified, derived and signed before the write transaction (responses.py);
inside it an answer whose inputs changed since is derived again, never written as read."""

from __future__ import annotations

from datetime import UTC, datetime

from openecos.cos.lifecycle import RequestEvent, next_status
from openecos.duis import ResponseCode
from openecos.eui import Eui64
from openecos.service import ManualClock, ServiceRuntime
from openecos.service.worker import CosWorker
from openecos.smki.sandbox import SUPPLIER_B
from openecos.store import CommandStatus, RequestStatus
from tests.service.env import (
    TCOS_METER,
    Environment,
    request_id,
    runtime_for,
    signed_6_23,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)


def _sent_and_answered(runtime: ServiceRuntime) -> str:
    """A 6.23 received, its command sent to the simulated meter, the meter's answer waiting."""
    assert runtime.intake.receive(signed_6_23(TCOS_METER, 1)).response_code is ResponseCode.I99

    def send(device: Eui64, command: bytes) -> None:
        assert runtime.estate.deliver(device, command, runtime.clock.now()) is not None

    worker = CosWorker(
        runtime.store, runtime.keys, runtime.trust, runtime.clock, send, worker_id="t"
    )
    assert worker.process_requests() == 1
    return request_id(SUPPLIER_B, TCOS_METER, 1)


def test_an_answer_derived_ahead_is_written_as_derived(env: Environment) -> None:
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    try:
        rid = _sent_and_answered(runtime)
        assert len(runtime.responses._derive_ahead(32)) == 1
        assert runtime.responses.process_outputs() == 1
        record = runtime.store.requests.get(rid)
        assert (record.status, record.response_code) == (RequestStatus.COMPLETED, "I0")
        to_b = runtime.store.outbox.take(SUPPLIER_B, at=NOW)
        assert [m.request_id for m in to_b if m.kind.value == "Response"] == [rid]
    finally:
        runtime.close()


def test_an_answer_whose_request_moved_on_since_it_was_derived_is_derived_again(
    env: Environment,
) -> None:
    runtime = runtime_for(env, ManualClock(NOW), run_workers=False)
    try:
        rid = _sent_and_answered(runtime)
        # Derived now (the request is CommandSent) ...
        ahead = runtime.responses._derive_ahead(32)
        assert [d.record.status for d in ahead.values()] == [RequestStatus.COMMAND_SENT]
        # ... then the request ends before the answer is written (e.g. given up: E21).
        runtime.store.requests.transition(
            rid,
            expected=RequestStatus.COMMAND_SENT,
            status=next_status(RequestStatus.COMMAND_SENT, RequestEvent.NO_RESPONSE),
            at=NOW,
            response_code="E21",
        )
        ended = runtime.store.requests.get(rid)
        runtime.responses._derive_ahead = lambda _limit: ahead  # type: ignore[method-assign]
        assert runtime.responses.process_outputs() == 1
        # Written from what holds now: a late answer updates the command, not the ended request.
        assert runtime.store.requests.get(rid) == ended
        commands = runtime.store.commands.for_request(rid)
        assert [c.status for c in commands] == [CommandStatus.SUCCEEDED]
    finally:
        runtime.close()
