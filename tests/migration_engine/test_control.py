"""Eligibility, capacity, run control, regimes and operator actions, through the engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from openecos.migration import (
    LIVE_SERVICE_CRITERIA,
    ApprovedModel,
    CredentialKnowledge,
    CriterionResult,
    IllegalTransition,
    IneligibleReason,
    MigrationStatus,
    OperatorAction,
    ReadinessCheck,
    Reason,
    Regime,
    RegimeChangeProblem,
    RegimeChangeRefused,
    RegimeEvent,
    RunEvent,
    RunState,
)
from openecos.network import MeterFaults
from openecos.service.migration_delivery import FaultPlan
from openecos.service.migration_regime import RegimeDesk
from openecos.smki.sandbox import TCOS_PARTY
from openecos.store import CosCredentialState
from tests.migration_engine.world import (
    FIRMWARE,
    MANUFACTURER,
    MODEL,
    World,
    drive,
    make_world,
)

S = MigrationStatus


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(
        tmp_path,
        db_url,
        meters=8,
        ecos=[5],
        born_ecos=[6],
        models={7: ("OTHER", "X-1", "9.9"), 4: (MANUFACTURER, MODEL, "0.1")},
    )
    yield w
    w.close()


def _status(world: World, i: int) -> tuple[MigrationStatus, object]:
    record = world.mig.get(world.meters[i])
    assert record is not None
    return record.status, record.ineligible


def test_born_ecos_and_already_ecos_meters_are_never_sent_anything(world: World) -> None:
    world.configure()
    world.start()
    drive(world, world.engine())
    assert _status(world, 6) == (S.INELIGIBLE, IneligibleReason.BORN_ECOS)
    assert _status(world, 5) == (S.INELIGIBLE, IneligibleReason.ALREADY_ECOS)
    for i in (5, 6):
        assert world.store.commands.in_flight(world.meters[i]) is None
        assert world.store.estate.outputs(world.meters[i]) == []
        record = world.mig.get(world.meters[i])
        assert record is not None and record.credentials is CredentialKnowledge.ECOS
    report = world.desk().emrr()
    assert dict(report.counts.ineligible_by_reason)[IneligibleReason.BORN_ECOS] == 1
    assert report.counts.remaining == 0  # born-ECoS meters are never work to do


def test_models_and_firmware_off_the_approved_list_wait_until_approved(world: World) -> None:
    world.configure(approved=[ApprovedModel(MANUFACTURER, MODEL, frozenset({FIRMWARE}))])
    world.start()
    engine = world.engine()
    drive(world, engine)
    assert _status(world, 7) == (S.INELIGIBLE, IneligibleReason.MODEL_NOT_APPROVED)
    assert _status(world, 4) == (S.INELIGIBLE, IneligibleReason.FIRMWARE_NOT_APPROVED)
    assert _status(world, 0) == (S.MIGRATED, None)
    desk = world.desk()
    desk.update_settings(
        lambda s: s.__class__(
            capacity=s.capacity,
            order=s.order,
            approved=s.approved.__class__(
                (ApprovedModel(MANUFACTURER, MODEL), ApprovedModel("other", "x-1"))
            ),
            device_types=s.device_types,
            policy=s.policy,
        ),
        actor="ops",
        what="approve",
    )
    drive(world, engine)
    assert _status(world, 7) == (S.MIGRATED, None)
    assert _status(world, 4) == (S.MIGRATED, None)


def test_capacity_per_day_is_never_exceeded_and_the_next_day_carries_on(world: World) -> None:
    world.configure(capacity=(2, 100, 100))
    world.start()
    engine = world.engine(batch=1)
    for _ in range(10):
        engine.step()
    counts = world.mig.counts_by_status()
    assert counts.get(S.MIGRATED, 0) == 2
    assert world.desk().run_state().started_today(world.clock.now()) == 2
    world.clock.advance(timedelta(days=1))
    for _ in range(10):
        engine.step()
    assert world.mig.counts_by_status().get(S.MIGRATED, 0) == 4


def test_in_flight_capacity_bounds_the_commands_out_at_once(world: World) -> None:
    world.configure(capacity=(100, 100, 2))
    world.start()
    plan = FaultPlan(MeterFaults(reboot=1.0), originators=frozenset({TCOS_PARTY}))
    engine = world.engine(plan=plan)
    engine.step()
    engine.step()
    assert world.mig.count({S.IN_FLIGHT}) == 2


def test_pause_starts_nothing_but_finishes_what_is_in_flight_and_drain_stops(
    world: World,
) -> None:
    world.configure(capacity=(100, 100, 2))
    world.start()
    plan = FaultPlan(MeterFaults(no_response=1.0), originators=frozenset({TCOS_PARTY}))
    engine = world.engine(plan=plan)
    engine.step()
    assert world.mig.count({S.IN_FLIGHT}) == 2
    desk = world.desk()
    desk.control(RunEvent.PAUSE, actor="ops")
    drive(world, engine)
    counts = world.mig.counts_by_status()
    assert counts[S.MIGRATED] == 2 and counts[S.ELIGIBLE] == 3  # resolved by reads; no more
    desk.control(RunEvent.RESUME, actor="ops")
    engine.step()
    desk.control(RunEvent.DRAIN, actor="ops")
    assert desk.run_state().state is RunState.DRAINING
    drive(world, engine)
    assert desk.run_state().state is RunState.STOPPED
    assert world.mig.counts_by_status()[S.MIGRATED] == 4
    with pytest.raises(IllegalTransition):
        desk.control(RunEvent.PAUSE, actor="ops")
    actions = [e.details.get("event") for e in world.store.audit.entries(subject="migration.run")]
    assert actions == ["start", "pause", "resume", "drain", "drained"]


def test_operator_actions_on_the_exceptions_queue(world: World) -> None:
    world.configure()
    world.start()
    plan = FaultPlan(MeterFaults(busy=1.0), devices=frozenset(world.meters[:3]))
    engine = world.engine(plan=plan)
    drive(world, engine)
    desk = world.desk()
    queue = [r.device for r in desk.exceptions()]
    assert queue == world.meters[:3]
    a, b, c = world.meters[:3]
    held = desk.act(a, OperatorAction.HOLD, actor="ops", note="supplier asked")
    assert held.status is S.HELD and held.actor == "ops"
    visit = desk.act(b, OperatorAction.FIELD_VISIT, actor="ops", note="book a visit")
    assert visit.status is S.FIELD_VISIT
    resolved = desk.act(
        b, OperatorAction.RESOLVE_MIGRATED, actor="engineer", note="ECoS certificate seen"
    )
    assert resolved.status is S.MIGRATED
    assert world.store.devices.get(b).credential_state is CosCredentialState.ECOS
    with pytest.raises(IllegalTransition):
        desk.act(b, OperatorAction.HOLD, actor="ops", note="too late")
    # A retry now gives a fresh budget; the meter is no longer busy.
    world.engines.clear()
    retried = desk.act(c, OperatorAction.RETRY_NOW, actor="ops", note="meter fixed")
    assert (retried.status, retried.reason, retried.attempts) == (
        S.RETRY_WAIT,
        Reason.RETRY_REQUESTED,
        0,
    )
    released = desk.act(a, OperatorAction.RELEASE_HOLD, actor="ops", note="go")
    assert released.status is S.ELIGIBLE
    drive(world, world.engine())
    assert _status(world, 0)[0] is S.MIGRATED and _status(world, 2)[0] is S.MIGRATED
    operator = [
        e for e in world.store.audit.entries(subject=a.hex) if e.action == "migration.operator"
    ]
    assert [(e.actor, e.details["operator_action"]) for e in operator] == [
        ("ops", "HOLD"),
        ("ops", "RELEASE_HOLD"),
    ]


def _readiness(world: World) -> ReadinessCheck:
    return ReadinessCheck(
        tuple(
            CriterionResult(c.name, True, (f"evidence/{c.name}.pdf",))
            for c in LIVE_SERVICE_CRITERIA
        ),
        world.clock.now(),
    )


def test_regime_changes_need_distinct_approvals_and_readiness_and_are_recorded(
    world: World,
) -> None:
    regimes = RegimeDesk(world.store, world.clock)
    assert regimes.current() is Regime.MIGRATION  # an empty history: both parties live
    regimes.approve(RegimeEvent.BACK_OUT, approver="alice", reason="defect found")
    with pytest.raises(RegimeChangeRefused) as refused:
        regimes.change(RegimeEvent.BACK_OUT, requested_by="alice")
    assert refused.value.problem is RegimeChangeProblem.APPROVALS_MISSING
    regimes.approve(RegimeEvent.BACK_OUT, approver="bob", reason="agreed")
    regimes.change(RegimeEvent.BACK_OUT, requested_by="alice")
    assert regimes.current() is Regime.PRE_GO_LIVE
    regimes.approve(RegimeEvent.GO_LIVE, approver="alice", reason="fixed")
    regimes.approve(RegimeEvent.GO_LIVE, approver="carol", reason="tested")
    with pytest.raises(RegimeChangeRefused) as refused:
        regimes.change(RegimeEvent.GO_LIVE, requested_by="alice")
    assert refused.value.problem is RegimeChangeProblem.READINESS_MISSING
    regimes.change(RegimeEvent.GO_LIVE, requested_by="alice", readiness=_readiness(world))
    view = regimes.view()
    assert view.regime is Regime.MIGRATION and not view.pending
    assert [(c.change.event, c.requested_by) for c in view.history] == [
        (RegimeEvent.BACK_OUT, "alice"),
        (RegimeEvent.GO_LIVE, "alice"),
    ]
    assert {a.approver for a in view.history[1].change.approvals} == {"alice", "carol"}
    assert view.history[1].change.readiness is not None
    audit = [e.action for e in world.store.audit.entries() if e.action.startswith("regime.")]
    assert audit.count("regime.changed") == 2 and audit.count("regime.approved") == 4


def test_pre_go_live_sends_no_migration_commands(world: World) -> None:
    world.configure()
    world.start()
    regimes = RegimeDesk(world.store, world.clock)
    for who in ("alice", "bob"):
        regimes.approve(RegimeEvent.BACK_OUT, approver=who, reason="not yet")
    regimes.change(RegimeEvent.BACK_OUT, requested_by="alice")
    engine = world.engine()
    drive(world, engine)
    assert world.mig.count({S.IN_FLIGHT, S.MIGRATED}) == 0
    assert world.mig.count({S.ELIGIBLE}) == 5


def test_retiring_tcos_raises_every_meter_left_on_tcos_for_recovery(world: World) -> None:
    world.configure(capacity=(3, 100, 100))
    world.start()
    engine = world.engine()
    while engine.step():  # three migrate today; the day's capacity is then spent
        pass
    regimes = RegimeDesk(world.store, world.clock)
    for who in ("alice", "bob"):
        regimes.approve(RegimeEvent.RETIRE_TCOS, approver=who, reason="migration over")
    readiness = ReadinessCheck(
        tuple(
            CriterionResult(n, True, ("panel minute 42",))
            for n in ("migration-complete", "exceptions-plan", "suppliers-informed")
        ),
        world.clock.now(),
    )
    regimes.change(RegimeEvent.RETIRE_TCOS, requested_by="alice", readiness=readiness)
    drive(world, engine)
    counts = world.mig.counts_by_status()
    assert counts[S.MIGRATED] == 3
    stranded = world.desk().exceptions()
    assert {r.device for r in stranded} == {world.meters[i] for i in (3, 4, 7)}
    assert {r.reason for r in stranded} == {Reason.TCOS_RETIRED}
    # ECoS meters are not stranded.
    assert _status(world, 5)[0] is S.INELIGIBLE and _status(world, 6)[0] is S.INELIGIBLE
