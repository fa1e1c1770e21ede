"""Killing the service between any two steps loses no acknowledged request and reuses no counter.

The service runs as ``openecos serve`` subprocesses on one store. Fault
injection (``OPENECOS_CRASH_AT``) makes a process SIGKILL itself right after a
named step of the worker; the next process takes the work item over when the
lease (1 s) runs out and finishes the request.
"""

from __future__ import annotations

import signal

from openecos.smki.sandbox import SUPPLIER_B, TCOS_PARTY
from openecos.store import CommandStatus, Store
from tests.service.env import (
    ECOS_METER,
    TCOS_METER,
    Environment,
    post,
    request_id,
    serve_process,
    signed_6_23,
    status_of,
    wait_until,
)


def _killed(process) -> bool:  # type: ignore[no-untyped-def]
    return process.poll() == -signal.SIGKILL


def test_killed_after_each_step_the_request_completes_once_with_fresh_counters(
    env: Environment,
) -> None:
    rid = request_id(SUPPLIER_B, TCOS_METER, 1)
    # 1. Killed after reserving a counter: that counter is never used.
    with serve_process(env, worker_id="w1", crash_at="after-reserve") as (process, client):
        assert post(client, signed_6_23(TCOS_METER, 1)) == "I99"
        wait_until(lambda: _killed(process))
    # 2. Killed after recording the signed command as Prepared, before sending it.
    with serve_process(env, worker_id="w2", crash_at="after-prepare") as (process, client):
        wait_until(lambda: _killed(process))
    # 3. Killed just after handing it to the network (before the WAN delivered it).
    with serve_process(env, worker_id="w3", crash_at="after-send") as (process, client):
        wait_until(lambda: _killed(process))
    # 4. A healthy process finishes it, resending the recorded bytes.
    with serve_process(env, worker_id="w4") as (process, client):
        wait_until(lambda: status_of(client, rid) == "Completed")
        # A request acknowledged after the crashes is served too.
        assert post(client, signed_6_23(ECOS_METER, 2)) == "I99"
        wait_until(lambda: status_of(client, request_id(SUPPLIER_B, ECOS_METER, 2)) == "Completed")

    with Store.open(env.store_url) as store:
        commands = store.commands.for_request(rid)
        # One command for the request, signed once, with the counter after the skipped one.
        assert [(c.originator_counter, c.status) for c in commands] == [
            (2, CommandStatus.SUCCEEDED)
        ]
        prepared = [e for e in store.audit.entries(subject=rid) if e.action == "command.prepared"]
        assert len(prepared) == 1
        assert store.signing_counters.last(TCOS_PARTY) is not None
        assert store.signing_counters.last(TCOS_PARTY) >= 2  # type: ignore[operator]
        # The meter executed it once: one response, whatever was resent.
        outputs = store.estate.outputs(TCOS_METER)
        assert len(outputs) == 1 and outputs[0].originator_counter == 2
