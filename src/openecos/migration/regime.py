"""ETMAD regimes: pre-go-live, migration, enduring; and how a regime changes.

Theory of operation. The ECoS Transition and Migration Approach Document
(ETMAD, SEC Appendix AS) sets which CoS arrangement the DCC runs
(docs/ecos-domain.md §C2, §S):

- :attr:`Regime.PRE_GO_LIVE`: the TCoS Party serves every 6.23; no migration;
- :attr:`Regime.MIGRATION`: after the ECoS Service Live Date, both parties serve
  6.23s (routed by the meter's credential state) and migration may run;
- :attr:`Regime.ENDURING`: TCoS retired; a 6.23 for a meter still on TCoS is
  refused and the meter raised for recovery (:mod:`openecos.migration.routing`).

A change is an event of :class:`RegimeEvent` looked up in :data:`TRANSITIONS`
(the only place that says which changes exist). :func:`change_regime` checks
what the change needs by :class:`RegimeChangePolicy`: a number of approvals by
*distinct* approvers, each recorded with who, when and why and naming the
change it approves, and, where configured, a passing :class:`ReadinessCheck`.
The default policy asks two approvers for every change, and a readiness check
against the eight ECoS Live Service Criteria (BEIS letter of 10 May 2022,
seed 000; :data:`LIVE_SERVICE_CRITERIA`) for go-live and against
:data:`TCOS_RETIREMENT_CRITERIA` (this project's checklist; ETMAD text was not
available) for retiring TCoS. A criterion passes only when it is marked met
*and* cites at least one piece of evidence. Nothing here stores or reads a
clock: the caller passes the time and records the returned
:class:`RegimeChange` (the audit trail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from openecos.migration.errors import (
    IllegalTransition,
    InvalidMigrationInput,
    RegimeChangeProblem,
    RegimeChangeRefused,
)


class Regime(StrEnum):
    """Which CoS arrangement the DCC runs (ETMAD)."""

    PRE_GO_LIVE = "pre-go-live"
    MIGRATION = "migration"
    ENDURING = "enduring"


class RegimeEvent(StrEnum):
    GO_LIVE = "go-live"
    """The ECoS Service Live Date: ECoS serves migrated meters; migration may run."""
    BACK_OUT = "back-out"
    """Return to TCoS-only operation (a go-live backed out before TCoS is retired)."""
    RETIRE_TCOS = "retire-tcos"
    """TCoS switched off: the enduring arrangement. Final."""


_R = Regime
_E = RegimeEvent

#: (regime, event) → next regime. Every pair not listed is illegal; ENDURING is final.
TRANSITIONS: MappingProxyType[tuple[Regime, RegimeEvent], Regime] = MappingProxyType(
    {
        (_R.PRE_GO_LIVE, _E.GO_LIVE): _R.MIGRATION,
        (_R.MIGRATION, _E.BACK_OUT): _R.PRE_GO_LIVE,
        (_R.MIGRATION, _E.RETIRE_TCOS): _R.ENDURING,
    }
)


def next_regime(regime: Regime, event: RegimeEvent) -> Regime:
    """The regime after ``event``; raises :class:`IllegalTransition` if not in the table."""
    try:
        return TRANSITIONS[(regime, event)]
    except KeyError:
        raise IllegalTransition("regime", regime.value, event.value) from None


def migration_may_run(regime: Regime) -> bool:
    """Whether 0x0106 migration commands may be sent in ``regime`` (ETMAD)."""
    return regime is Regime.MIGRATION


# -- readiness ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    """A named readiness criterion and what it asks."""

    name: str
    description: str


#: The eight ECoS Live Service Criteria for starting migration (seed 000, docs/ecos-domain.md §S).
LIVE_SERVICE_CRITERIA: tuple[Criterion, ...] = (
    Criterion("testing-complete", "ECoS testing complete: core solution, migration, capacity"),
    Criterion("defects-resolved", "defects resolved or accepted"),
    Criterion("dcc-operationally-ready", "DCC operationally ready to start migration"),
    Criterion("bc-dr-in-place", "business continuity and disaster recovery in place"),
    Criterion("consumer-impacts-managed", "consumer impacts considered and managed"),
    Criterion("security-assured", "security assured (CISO and SSC letters)"),
    Criterion("services-stable", "pre-existing services stable"),
    Criterion("users-ready", "enough DCC Users ready (XML-signing keys with correct MPIDs)"),
)

#: This project's checklist for retiring TCoS (ETMAD's own list was not available).
TCOS_RETIREMENT_CRITERIA: tuple[Criterion, ...] = (
    Criterion("migration-complete", "every eligible meter migrated or in the exceptions queue"),
    Criterion("exceptions-plan", "a recovery plan for every meter still on TCoS"),
    Criterion("suppliers-informed", "suppliers told which of their meters remain on TCoS"),
)


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """One criterion as assessed: met or not, and the evidence references it rests on."""

    criterion: str
    met: bool
    evidence: tuple[str, ...] = ()
    """References to the evidence (a letter, a test report, a panel minute)."""

    @property
    def passes(self) -> bool:
        return self.met and any(ref.strip() for ref in self.evidence)


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A readiness assessment the caller supplies, at ``assessed_at``."""

    results: tuple[CriterionResult, ...]
    assessed_at: datetime

    def failing(self, required: tuple[Criterion, ...]) -> tuple[str, ...]:
        """Names of the required criteria that are absent, not met or without evidence."""
        by_name = {r.criterion: r for r in self.results}
        return tuple(
            c.name for c in required if c.name not in by_name or not by_name[c.name].passes
        )


# -- approvals and policy ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's recorded approval of one regime change: who, when and why."""

    approver: str
    at: datetime
    reason: str
    event: RegimeEvent

    def __post_init__(self) -> None:
        if not self.approver.strip():
            raise InvalidMigrationInput("an approval names its approver")
        if not self.reason.strip():
            raise InvalidMigrationInput("an approval says why")
        _aware("approval time", self.at)


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidMigrationInput(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def _default_readiness() -> Mapping[RegimeEvent, tuple[Criterion, ...]]:
    return MappingProxyType(
        {
            RegimeEvent.GO_LIVE: LIVE_SERVICE_CRITERIA,
            RegimeEvent.RETIRE_TCOS: TCOS_RETIREMENT_CRITERIA,
        }
    )


@dataclass(frozen=True, slots=True)
class RegimeChangePolicy:
    """What a regime change needs.

    ``approvers_required``: distinct approvers per change (at least 1).
    ``readiness``: for each event that needs a readiness check, the criteria
    that must pass; an event absent from the mapping needs none.
    """

    approvers_required: int = 2
    readiness: Mapping[RegimeEvent, tuple[Criterion, ...]] = field(
        default_factory=_default_readiness
    )
    readiness_max_age: timedelta | None = None
    """If set, a readiness check older than this at the change is stale."""

    def __post_init__(self) -> None:
        if self.approvers_required < 1:
            raise InvalidMigrationInput("a regime change needs at least one approver")


@dataclass(frozen=True, slots=True)
class RegimeChange:
    """A regime change as made: the record to keep (audit trail)."""

    previous: Regime
    event: RegimeEvent
    regime: Regime
    at: datetime
    approvals: tuple[Approval, ...]
    readiness: ReadinessCheck | None


def change_regime(
    current: Regime,
    event: RegimeEvent,
    *,
    approvals: tuple[Approval, ...],
    at: datetime,
    readiness: ReadinessCheck | None = None,
    policy: RegimeChangePolicy | None = None,
) -> RegimeChange:
    """Makes the change if ``policy`` is satisfied; raises :class:`RegimeChangeRefused`.

    An approval counts when it names ``event`` and was given no later than
    ``at``; the same approver counts once. Order of checks: the table, the
    approvals, the readiness.
    """
    policy = policy or RegimeChangePolicy()
    at = _aware("change time", at)
    if (current, event) not in TRANSITIONS:
        raise RegimeChangeRefused(
            RegimeChangeProblem.NOT_ALLOWED, f"{event.value} from {current.value}"
        )
    for approval in approvals:
        if approval.event is not event or approval.at.astimezone(UTC) > at:
            raise RegimeChangeRefused(
                RegimeChangeProblem.APPROVAL_INVALID,
                f"{approval.approver} approved {approval.event.value} at {approval.at}",
            )
    approvers = {a.approver.strip().casefold() for a in approvals}
    if len(approvers) < policy.approvers_required:
        raise RegimeChangeRefused(
            RegimeChangeProblem.APPROVALS_MISSING,
            f"{len(approvers)} of {policy.approvers_required} distinct approvers",
        )
    required = policy.readiness.get(event)
    if required:
        if readiness is None:
            raise RegimeChangeRefused(RegimeChangeProblem.READINESS_MISSING, event.value)
        assessed = _aware("readiness time", readiness.assessed_at)
        if assessed > at:
            raise RegimeChangeRefused(
                RegimeChangeProblem.READINESS_NOT_MET, f"assessed after the change ({assessed})"
            )
        if policy.readiness_max_age is not None and at - assessed > policy.readiness_max_age:
            raise RegimeChangeRefused(
                RegimeChangeProblem.READINESS_NOT_MET, f"assessment of {assessed} is stale"
            )
        failing = readiness.failing(required)
        if failing:
            raise RegimeChangeRefused(RegimeChangeProblem.READINESS_NOT_MET, ", ".join(failing))
    return RegimeChange(
        previous=current,
        event=event,
        regime=next_regime(current, event),
        at=at,
        approvals=approvals,
        readiness=readiness,
    )
