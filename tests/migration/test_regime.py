"""ETMAD regimes: the change table, approvals and readiness; 6.23 routing per regime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openecos.cos.routing import CosParties, CosParty
from openecos.duis.codes import ResponseCode
from openecos.migration import (
    LIVE_SERVICE_CRITERIA,
    ROUTES,
    TCOS_RETIREMENT_CRITERIA,
    Approval,
    CriterionResult,
    IllegalTransition,
    InvalidMigrationInput,
    ReadinessCheck,
    RefusalReason,
    Regime,
    RegimeChangePolicy,
    RegimeChangeProblem,
    RegimeChangeRefused,
    RegimeEvent,
    RoutingConfig,
    UpdateRefused,
    change_regime,
    may_start,
    migration_may_run,
    next_regime,
    route_update,
)
from openecos.migration.planning import RunState
from openecos.migration.regime import TRANSITIONS
from openecos.smki.sandbox import ECOS_PARTY, TCOS_PARTY
from openecos.store.enums import CosCredentialState

T0 = datetime(2023, 6, 29, 9, tzinfo=UTC)
TCOS, ECOS = CosCredentialState.TCOS, CosCredentialState.ECOS
PARTIES = CosParties(
    CosParty("TCoS", TCOS_PARTY, "tcos-ds"), CosParty("ECoS", ECOS_PARTY, "ecos-ds")
)


def _approvals(event: RegimeEvent, *who: str) -> tuple[Approval, ...]:
    return tuple(Approval(w, T0 - timedelta(days=1), "SEC Panel approval", event) for w in who)


def _ready(
    criteria: tuple[object, ...], *, failing: str | None = None, evidence: bool = True
) -> ReadinessCheck:
    results = tuple(
        CriterionResult(c.name, c.name != failing, ("letter-2023-06",) if evidence else ())  # type: ignore[attr-defined]
        for c in criteria
    )
    return ReadinessCheck(results, T0 - timedelta(hours=1))


READY_FOR = {
    RegimeEvent.GO_LIVE: LIVE_SERVICE_CRITERIA,
    RegimeEvent.RETIRE_TCOS: TCOS_RETIREMENT_CRITERIA,
}


@pytest.mark.parametrize(("transition", "target"), sorted(TRANSITIONS.items()))
def test_every_regime_change_in_the_table_is_made_with_approvals_and_readiness(
    transition: tuple[Regime, RegimeEvent], target: Regime
) -> None:
    regime, event = transition
    readiness = _ready(READY_FOR[event]) if event in READY_FOR else None
    change = change_regime(
        regime, event, approvals=_approvals(event, "alice", "bob"), at=T0, readiness=readiness
    )
    assert change.regime is target
    assert change.previous is regime
    assert next_regime(regime, event) is target


ILLEGAL = [(r, e) for r in Regime for e in RegimeEvent if (r, e) not in TRANSITIONS]


@pytest.mark.parametrize(("regime", "event"), ILLEGAL)
def test_changes_not_in_the_table_raise(regime: Regime, event: RegimeEvent) -> None:
    with pytest.raises(IllegalTransition):
        next_regime(regime, event)
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(regime, event, approvals=_approvals(event, "a", "b"), at=T0)
    assert refused.value.problem is RegimeChangeProblem.NOT_ALLOWED


def test_enduring_is_final() -> None:
    assert not [e for (r, e) in TRANSITIONS if r is Regime.ENDURING]


def test_one_approver_twice_is_not_two_approvers() -> None:
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(
            Regime.MIGRATION,
            RegimeEvent.BACK_OUT,
            approvals=_approvals(RegimeEvent.BACK_OUT, "alice", "Alice "),
            at=T0,
        )
    assert refused.value.problem is RegimeChangeProblem.APPROVALS_MISSING


def test_the_number_of_approvers_is_configurable() -> None:
    policy = RegimeChangePolicy(approvers_required=3)
    approvals = _approvals(RegimeEvent.BACK_OUT, "a", "b")
    with pytest.raises(RegimeChangeRefused):
        change_regime(
            Regime.MIGRATION, RegimeEvent.BACK_OUT, approvals=approvals, at=T0, policy=policy
        )
    approvals += _approvals(RegimeEvent.BACK_OUT, "c")
    change = change_regime(
        Regime.MIGRATION, RegimeEvent.BACK_OUT, approvals=approvals, at=T0, policy=policy
    )
    assert change.approvals == approvals


def test_an_approval_for_another_change_or_from_the_future_is_refused() -> None:
    wrong = _approvals(RegimeEvent.RETIRE_TCOS, "a", "b")
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(Regime.MIGRATION, RegimeEvent.BACK_OUT, approvals=wrong, at=T0)
    assert refused.value.problem is RegimeChangeProblem.APPROVAL_INVALID
    later = (Approval("a", T0 + timedelta(seconds=1), "why", RegimeEvent.BACK_OUT),)
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(Regime.MIGRATION, RegimeEvent.BACK_OUT, approvals=later, at=T0)
    assert refused.value.problem is RegimeChangeProblem.APPROVAL_INVALID


@pytest.mark.parametrize("field", ["approver", "reason"])
def test_an_approval_says_who_and_why(field: str) -> None:
    values = {"approver": "alice", "reason": "because"} | {field: "  "}
    with pytest.raises(InvalidMigrationInput):
        Approval(values["approver"], T0, values["reason"], RegimeEvent.GO_LIVE)


def test_go_live_needs_a_readiness_check() -> None:
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(
            Regime.PRE_GO_LIVE,
            RegimeEvent.GO_LIVE,
            approvals=_approvals(RegimeEvent.GO_LIVE, "a", "b"),
            at=T0,
        )
    assert refused.value.problem is RegimeChangeProblem.READINESS_MISSING


@pytest.mark.parametrize("failing", [c.name for c in LIVE_SERVICE_CRITERIA])
def test_go_live_is_refused_while_any_live_service_criterion_fails(failing: str) -> None:
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(
            Regime.PRE_GO_LIVE,
            RegimeEvent.GO_LIVE,
            approvals=_approvals(RegimeEvent.GO_LIVE, "a", "b"),
            at=T0,
            readiness=_ready(LIVE_SERVICE_CRITERIA, failing=failing),
        )
    assert refused.value.problem is RegimeChangeProblem.READINESS_NOT_MET
    assert failing in refused.value.detail


def test_a_criterion_met_without_evidence_fails() -> None:
    with pytest.raises(RegimeChangeRefused) as refused:
        change_regime(
            Regime.PRE_GO_LIVE,
            RegimeEvent.GO_LIVE,
            approvals=_approvals(RegimeEvent.GO_LIVE, "a", "b"),
            at=T0,
            readiness=_ready(LIVE_SERVICE_CRITERIA, evidence=False),
        )
    assert refused.value.problem is RegimeChangeProblem.READINESS_NOT_MET


def test_a_stale_or_future_readiness_check_fails() -> None:
    approvals = _approvals(RegimeEvent.GO_LIVE, "a", "b")
    stale = ReadinessCheck(_ready(LIVE_SERVICE_CRITERIA).results, T0 - timedelta(days=40))
    policy = RegimeChangePolicy(readiness_max_age=timedelta(days=30))
    with pytest.raises(RegimeChangeRefused):
        change_regime(
            Regime.PRE_GO_LIVE,
            RegimeEvent.GO_LIVE,
            approvals=approvals,
            at=T0,
            readiness=stale,
            policy=policy,
        )
    future = ReadinessCheck(stale.results, T0 + timedelta(days=1))
    with pytest.raises(RegimeChangeRefused):
        change_regime(
            Regime.PRE_GO_LIVE, RegimeEvent.GO_LIVE, approvals=approvals, at=T0, readiness=future
        )


def test_readiness_can_be_configured_off() -> None:
    policy = RegimeChangePolicy(approvers_required=1, readiness={})
    change = change_regime(
        Regime.PRE_GO_LIVE,
        RegimeEvent.GO_LIVE,
        approvals=_approvals(RegimeEvent.GO_LIVE, "a"),
        at=T0,
        policy=policy,
    )
    assert change.regime is Regime.MIGRATION


def test_migration_runs_only_in_the_migration_regime_and_when_running() -> None:
    assert [r for r in Regime if migration_may_run(r)] == [Regime.MIGRATION]
    assert may_start(Regime.MIGRATION, RunState.RUNNING)
    assert not may_start(Regime.MIGRATION, RunState.PAUSED)
    assert not may_start(Regime.ENDURING, RunState.RUNNING)


# -- routing -----------------------------------------------------------------------------------

ROUTED = [
    (Regime.PRE_GO_LIVE, TCOS, TCOS),
    (Regime.MIGRATION, TCOS, TCOS),
    (Regime.MIGRATION, ECOS, ECOS),
    (Regime.ENDURING, ECOS, ECOS),
]


@pytest.mark.parametrize(("regime", "state", "signer"), ROUTED)
def test_routing_per_regime_and_credential_state(
    regime: Regime, state: CosCredentialState, signer: CosCredentialState
) -> None:
    decision = route_update(regime, state)
    assert decision.require() is signer
    assert decision.party(PARTIES).entity_eui == (TCOS_PARTY if signer is TCOS else ECOS_PARTY)


def test_tcos_meter_after_tcos_is_retired_is_refused_with_a_code_and_an_exception() -> None:
    decision = route_update(Regime.ENDURING, TCOS)
    assert decision.refusal is RefusalReason.TCOS_RETIRED
    assert decision.raise_exception
    with pytest.raises(UpdateRefused) as refused:
        decision.party(PARTIES)
    assert refused.value.response_code is ResponseCode.E062306
    assert refused.value.raise_exception


def test_ecos_meter_before_go_live_is_refused_unless_the_pilot_is_on() -> None:
    decision = route_update(Regime.PRE_GO_LIVE, ECOS)
    assert decision.refusal is RefusalReason.ECOS_NOT_LIVE
    with pytest.raises(UpdateRefused):
        decision.require()
    assert route_update(Regime.PRE_GO_LIVE, ECOS, RoutingConfig(ecos_pilot=True)).require() is ECOS


def test_refusal_codes_are_configuration() -> None:
    config = RoutingConfig(tcos_retired_response_code=ResponseCode.E5)
    assert route_update(Regime.ENDURING, TCOS, config).response_code is ResponseCode.E5


def test_every_regime_and_state_has_a_route() -> None:
    assert set(ROUTES) == {(r, s) for r in Regime for s in CosCredentialState}
