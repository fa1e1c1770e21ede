"""A future-dated 6.23 whose 0x00CB alert never comes ends Failed with E30, not pending.

The meter accepts the future-dated command, then breaks (a meter fault: it
never executes it, never alerts). ``WorkerSettings.alert_deadline`` after the
execution date-time, the service gives up waiting: the request is Failed with
E30, the command's outcome is OutcomeUnknown (the meter must be read before
anyone relies on its cells), the requester gets the E30 response, the
inventory is unchanged, and the audit log says why.
"""

from __future__ import annotations

from datetime import timedelta

from openecos.service import CosWorker, ManualClock, WorkerSettings
from openecos.smki.sandbox import SUPPLIER_B
from tests.e2e.world import NOW, build_request, next_counter
from tests.service.env import (
    TCOS_METER,
    Environment,
    post,
    request_id,
    response_code,
    running_server,
    runtime_for,
    status_of,
    wait_until,
)

DEADLINE = timedelta(minutes=30)


def test_a_missing_future_dated_alert_ends_failed_with_e30_after_the_deadline(
    env: Environment,
) -> None:
    clock = ManualClock(NOW)
    settings = WorkerSettings(
        lease=timedelta(seconds=2), response_timeout=timedelta(seconds=3), alert_deadline=DEADLINE
    )
    runtime = runtime_for(env, clock, worker=settings)
    with running_server(runtime) as client:
        execution = NOW + timedelta(hours=1)
        counter = next_counter()
        rid = request_id(SUPPLIER_B, TCOS_METER, counter)
        assert post(client, build_request(TCOS_METER, counter, execution=execution)) == "I99"
        wait_until(lambda: status_of(client, rid) == "FutureDatedPending")
        client.get(f"/users/{SUPPLIER_B.hex}/messages")  # commandAccepted
        cells = runtime.store.devices.trust_anchors(TCOS_METER)
        runtime.estate.break_meter(TCOS_METER, clock.now())

        # Past the execution time, within the deadline: still waiting, by the rule itself.
        clock.advance(timedelta(hours=1) + DEADLINE - timedelta(minutes=1))
        probe = CosWorker(
            runtime.store,
            runtime.keys,
            runtime.trust,
            clock,
            lambda _device, _payload: None,
            worker_id="probe",
            settings=settings,
        )
        assert probe.expire_overdue_alerts() == 0
        assert status_of(client, rid) == "FutureDatedPending"

        clock.advance(timedelta(minutes=2))
        wait_until(lambda: status_of(client, rid) == "Failed")
        view = client.get(f"/api/requests/{rid}").json()
        assert view["response_code"] == "E30"
        assert [c["status"] for c in view["commands"]] == ["OutcomeUnknown"]
        answers = client.get(f"/users/{SUPPLIER_B.hex}/messages").json()
        assert [(m["request_id"], response_code(m["body"])) for m in answers] == [(rid, "E30")]
        assert runtime.store.devices.trust_anchors(TCOS_METER) == cells
        audit = client.get("/api/audit", params={"subject": rid}).json()
        assert audit[-1]["action"] == "command.alert-overdue"
        assert audit[-1]["details"]["response_code"] == "E30"
        # The meter stays blocked for new switches until its state is known again.
        device = client.get(f"/api/devices/{TCOS_METER.hex}").json()
        assert device["in_flight_command"]["status"] == "OutcomeUnknown"
    runtime.close()
