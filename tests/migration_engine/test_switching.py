"""Change of supplier carries on throughout migration (issue 4 items 3 and 4).

The service runs as in production (``open_runtime``: API, CoS workers,
response processing over the persistent estate), on SQLite and PostgreSQL;
6.23s are signed DUIS posted over HTTP. The migration engine runs beside it on
the same store and clock, either stepped by the test (to hold a migration in
flight at a chosen moment) or inside the runtime's worker loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openecos.device import SUPPLIER_DS_CELL, TRANSITIONAL_COS_CELL
from openecos.eui import Eui64
from openecos.migration import (
    ApprovedModel,
    ApprovedModels,
    CapacityLimits,
    CriterionResult,
    MigrationStatus,
    ReadinessCheck,
    Reason,
    RegimeEvent,
    RunEvent,
)
from openecos.migration.command import MESSAGE_CODE as MIGRATION_CODE
from openecos.network import MeterFaults
from openecos.service import ManualClock
from openecos.service.migration_delivery import EstateDelivery, FaultPlan
from openecos.service.migration_desk import MigrationDesk
from openecos.service.migration_engine import EngineConfig, MigrationEngine
from openecos.service.migration_regime import RegimeDesk
from openecos.service.migration_settings import MigrationSettings
from openecos.smki.sandbox import ECOS_PARTY, SUPPLIER_B, TCOS_PARTY
from openecos.store import CommandStatus, CosCredentialState, Store
from openecos.store.migration import migration_repository
from tests.migration_engine.world import FAST_POLICY
from tests.service.env import (
    ECOS_METER,
    SPARE_METERS,
    TCOS_METER,
    Environment,
    make_environment,
    pki,
    post,
    request_id,
    running_server,
    runtime_for,
    signed_6_23,
    status_of,
    wait_until,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
S = MigrationStatus


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Environment:
    meters = {TCOS_METER: CosCredentialState.TCOS, ECOS_METER: CosCredentialState.ECOS}
    meters.update({m: CosCredentialState.TCOS for m in SPARE_METERS})
    return make_environment(tmp_path, db_url, meters)


def _configure(store: Store, clock: ManualClock, *, in_flight: int = 100) -> MigrationDesk:
    desk = MigrationDesk(store, clock)
    desk.update_settings(
        lambda s: MigrationSettings(
            capacity=CapacityLimits(100_000, 100_000, in_flight),
            order=s.order,
            approved=ApprovedModels((ApprovedModel("OPENECOS", "SIM-1"),)),
            device_types=s.device_types,
            # A meter held back by a 6.23 in flight is looked at again within a second.
            policy=replace(FAST_POLICY, reassess_interval=1.0),
        ),
        actor="test",
        what="setup",
    )
    desk.control(RunEvent.START, actor="test")
    return desk


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def runtime(env: Environment, clock: ManualClock) -> Iterator[object]:
    runtime = runtime_for(env, clock)
    yield runtime
    runtime.close()


def _engine(runtime, clock: ManualClock, plan: FaultPlan | None = None) -> MigrationEngine:  # type: ignore[no-untyped-def]
    deliver = EstateDelivery(runtime.estate, clock, plan or FaultPlan())
    return MigrationEngine(
        runtime.store,
        runtime.identities,
        clock,
        deliver,
        worker_id="test-engine",
        config=EngineConfig(batch=32, plan=plan or FaultPlan()),
    )


def test_a_6_23_waits_for_an_in_flight_migration_then_is_signed_by_ecos(
    runtime, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    store = runtime.store
    _configure(store, clock)
    # The meter's answer to the 0x0106 is lost: the migration stays in flight until a read.
    lost = FaultPlan(
        MeterFaults(no_response=1.0),
        originators=frozenset({TCOS_PARTY}),
        devices=frozenset({TCOS_METER}),
    )
    engine = _engine(runtime, clock, lost)
    runtime.responses.answers.plan = lost  # the service's processor sees the same network
    engine.step()
    mig = migration_repository(store)
    assert mig.status_of(TCOS_METER) is S.IN_FLIGHT
    with running_server(runtime) as client:
        assert post(client, signed_6_23(TCOS_METER, 1)) == "I99"
        rid = request_id(SUPPLIER_B, TCOS_METER, 1)
        # It waits: neither refused nor sent, while the migration's outcome is unknown.
        wait_until(lambda: _deferred(store, rid) >= 2)
        assert status_of(client, rid) == "Acknowledged"
        assert store.commands.for_request(rid) == []
        # The migration resolves (time-out, then a read shows the ECoS certificate).
        clock.advance(timedelta(seconds=FAST_POLICY.response_timeout + 1))
        engine.step()
        assert mig.status_of(TCOS_METER) is S.OUTCOME_UNKNOWN
        clock.advance(timedelta(seconds=FAST_POLICY.read_delay + 1))
        engine.step()
        wait_until(lambda: mig.status_of(TCOS_METER) is S.MIGRATED)
        record = mig.get(TCOS_METER)
        assert record is not None and record.reason is Reason.CONFIRMED_BY_READ
        # Then the 6.23 goes, routed to the ECoS Party, and completes.
        wait_until(lambda: status_of(client, rid) == "Completed")
        view = client.get(f"/api/requests/{rid}").json()
        assert [c["signer"] for c in view["commands"]] == [ECOS_PARTY.hex]
        assert view["response_code"] == "I0"
        # The ECoS Party's counter is above the floor the 0x0106 set for it ([4]).
        migration = store.commands.get(TCOS_PARTY, record.command_counter)  # type: ignore[arg-type]
        assert migration.status is CommandStatus.SUCCEEDED
        state = runtime.estate.state(TCOS_METER)
        assert state is not None
        assert state.cell(TRANSITIONAL_COS_CELL).der == pki().entry("ecos-ds").certificate.der
        assert state.cell(SUPPLIER_DS_CELL).der == pki().entry("supplier-b-ds").certificate.der


def _deferred(store: Store, rid: str) -> int:
    from sqlalchemy import select

    from openecos.store import schema

    w = schema.work_items
    with store.engine.connect() as conn:
        row = conn.execute(select(w.c.attempts, w.c.last_error).where(w.c.subject == rid)).first()
    if row is None or row.last_error is None or "migration" not in row.last_error:
        return 0
    return int(row.attempts)


def test_a_meter_migrated_under_a_pending_future_dated_6_23_still_executes_it(
    runtime, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    store = runtime.store
    execution = NOW + timedelta(hours=2)
    with running_server(runtime) as client:
        assert post(client, signed_6_23(TCOS_METER, 1, execution=execution)) == "I99"
        rid = request_id(SUPPLIER_B, TCOS_METER, 1)
        wait_until(lambda: status_of(client, rid) == "FutureDatedPending")
        held = store.commands.for_request(rid)
        assert [(c.signer, c.status) for c in held] == [
            (TCOS_PARTY, CommandStatus.AWAITING_EXECUTION)
        ]
        # Migrate the meter now, with the TCoS-signed 0x0107 held in it.
        _configure(store, clock)
        engine = _engine(runtime, clock)
        engine.step()
        wait_until(
            lambda: (
                (engine.step() or True)
                and migration_repository(store).status_of(TCOS_METER) is S.MIGRATED
            )
        )
        migration = [
            c for c in _device_commands(store, TCOS_METER) if c.message_code == MIGRATION_CODE
        ]
        assert len(migration) == 1 and not migration[0].credential_changing
        assert store.devices.get(TCOS_METER).credential_state is CosCredentialState.ECOS
        assert status_of(client, rid) == "FutureDatedPending"
        # The execution time passes: the meter executes the held command and alerts.
        clock.advance(timedelta(hours=2, minutes=1))
        wait_until(lambda: status_of(client, rid) == "Completed")
        state = runtime.estate.state(TCOS_METER)
        assert state is not None and state.pending is None
        assert state.cell(SUPPLIER_DS_CELL).der == pki().entry("supplier-b-ds").certificate.der
        assert state.cell(TRANSITIONAL_COS_CELL).der == pki().entry("ecos-ds").certificate.der
        [command] = store.commands.for_request(rid)
        assert (command.signer, command.status) == (TCOS_PARTY, CommandStatus.SUCCEEDED)


def _device_commands(store: Store, device: Eui64) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    from openecos.store import schema
    from openecos.store.commands import _command

    c = schema.commands
    with store.engine.connect() as conn:
        rows = conn.execute(select(c).where(c.c.device == device).order_by(c.c.created_at)).all()
    return [_command(r) for r in rows]


def test_switching_and_migration_run_together_and_each_6_23_goes_to_the_right_party(
    env: Environment, clock: ManualClock
) -> None:
    runtime = runtime_for(env, clock, migration=EngineConfig(batch=3))
    store = runtime.store
    _configure(store, clock, in_flight=3)
    meters = [*SPARE_METERS[:10], TCOS_METER, ECOS_METER]
    try:
        with running_server(runtime) as client:
            for counter, meter in enumerate(meters, start=1):
                assert post(client, signed_6_23(meter, counter)) == "I99"
            rids = [request_id(SUPPLIER_B, m, n) for n, m in enumerate(meters, start=1)]
            wait_until(lambda: all(status_of(client, r) == "Completed" for r in rids), timeout=120)
            mig = migration_repository(store)
            wait_until(lambda: mig.count({S.MIGRATED}) == len(SPARE_METERS) + 1, timeout=120)
    finally:
        runtime.close()
    with Store.open(env.store_url) as store:
        for meter, rid in zip(meters, rids, strict=True):
            [command] = store.commands.for_request(rid)
            migrated = [
                c
                for c in _device_commands(store, meter)
                if c.message_code == MIGRATION_CODE and c.status is CommandStatus.SUCCEEDED
            ]
            # Signed by the party whose key the meter trusted when the command was made.
            if meter == ECOS_METER or (
                migrated
                and migrated[0].answered_at is not None
                and (migrated[0].answered_at <= command.created_at)
            ):
                assert command.signer == ECOS_PARTY
            else:
                assert command.signer == TCOS_PARTY
            assert command.status is CommandStatus.SUCCEEDED
        refusals = [e for e in store.audit.entries(limit=100_000) if e.action == "request.rejected"]
        assert refusals == []


def _retire(store: Store, clock: ManualClock) -> None:
    regimes = RegimeDesk(store, clock)
    for who in ("alice", "bob"):
        regimes.approve(RegimeEvent.RETIRE_TCOS, approver=who, reason="done")
    readiness = ReadinessCheck(
        tuple(
            CriterionResult(n, True, ("minute 7",))
            for n in ("migration-complete", "exceptions-plan", "suppliers-informed")
        ),
        clock.now(),
    )
    regimes.change(RegimeEvent.RETIRE_TCOS, requested_by="alice", readiness=readiness)


def test_in_the_enduring_regime_a_6_23_for_a_tcos_meter_is_refused_and_raised(
    runtime, clock: ManualClock
) -> None:  # type: ignore[no-untyped-def]
    store = runtime.store
    _configure(store, clock)
    engine = _engine(runtime, clock)
    engine.enrol(engine.settings(), RegimeDesk(store, clock).current())
    _retire(store, clock)
    with running_server(runtime) as client:
        assert post(client, signed_6_23(TCOS_METER, 1)) == "I99"
        assert post(client, signed_6_23(ECOS_METER, 2)) == "I99"
        rid = request_id(SUPPLIER_B, TCOS_METER, 1)
        wait_until(lambda: status_of(client, rid) == "Rejected")
        assert client.get(f"/api/requests/{rid}").json()["response_code"] == "E062306"
        wait_until(lambda: status_of(client, request_id(SUPPLIER_B, ECOS_METER, 2)) == "Completed")
    record = migration_repository(store).get(TCOS_METER)
    assert record is not None
    assert (record.status, record.reason) == (S.EXCEPTION, Reason.TCOS_RETIRED)
    stranded = [
        e for e in store.audit.entries(subject=TCOS_METER.hex) if e.action == "migration.stranded"
    ]
    assert stranded and stranded[0].details["exception_raised"] is True


def test_before_go_live_a_6_23_for_an_ecos_meter_is_refused(runtime, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    store = runtime.store
    regimes = RegimeDesk(store, clock)
    for who in ("alice", "bob"):
        regimes.approve(RegimeEvent.BACK_OUT, approver=who, reason="not live")
    regimes.change(RegimeEvent.BACK_OUT, requested_by="alice")
    with running_server(runtime) as client:
        assert post(client, signed_6_23(ECOS_METER, 1)) == "I99"
        assert post(client, signed_6_23(TCOS_METER, 2)) == "I99"
        rid = request_id(SUPPLIER_B, ECOS_METER, 1)
        wait_until(lambda: status_of(client, rid) == "Rejected")
        wait_until(lambda: status_of(client, request_id(SUPPLIER_B, TCOS_METER, 2)) == "Completed")
        view = client.get(f"/api/requests/{request_id(SUPPLIER_B, TCOS_METER, 2)}").json()
        assert [c["signer"] for c in view["commands"]] == [TCOS_PARTY.hex]
