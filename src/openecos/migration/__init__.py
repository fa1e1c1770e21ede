"""``openecos.migration``: the pure decision layer of the TCoS → ECoS migration.

Values in, values out; no I/O and no clock (times are arguments). The
migration engine (store, workers, delivery, CLI, API) is built on this API:

- :mod:`~openecos.migration.regime`: ETMAD regimes and approved, ready changes
  (:func:`change_regime`);
- :mod:`~openecos.migration.routing`: how a 6.23 is routed per regime and
  credential state, or refused (:func:`route_update`);
- :mod:`~openecos.migration.eligibility`: who may be migrated, and why not
  (:func:`assess`, :class:`IneligibleReason`);
- :mod:`~openecos.migration.planning`: run control (stop, run, pause, drain)
  and capacity (:func:`plan_starts`);
- :mod:`~openecos.migration.policy`: EMEHRA error classes and retry policies;
- :mod:`~openecos.migration.record` / :mod:`~openecos.migration.lifecycle`:
  the per-meter state and its one transition table;
- :mod:`~openecos.migration.command`: the CS02b 0x0106 command;
  :mod:`~openecos.migration.responses`: what the meter's answer means;
  :mod:`~openecos.migration.credentials`: the CS02a read of the cell;
- :mod:`~openecos.migration.emrr` / :mod:`~openecos.migration.emrr_render`:
  EMRR figures, JSON and CSV.
"""

from openecos.migration.command import (
    MESSAGE_CODE,
    TRANSITIONAL_COS_CELL,
    AnchorIdentity,
    EcosCredential,
    MigrationCommandConfig,
    build_migration_command,
    build_trans_cos_by_trans_cos,
)
from openecos.migration.credentials import (
    ACB_KA_CELL,
    build_credentials_read,
    cell_holder,
    credentials_read_content,
    interpret_credentials,
    read_credentials_response,
    reading_of,
)
from openecos.migration.eligibility import (
    ELIGIBLE,
    ApprovedModel,
    ApprovedModels,
    Eligibility,
    EligibilityConfig,
    IneligibleReason,
    assess,
    count_by_reason,
)
from openecos.migration.emrr import (
    CATEGORY_OF,
    CountRow,
    DailyRow,
    EmrrCategory,
    EmrrCounts,
    EmrrReport,
    Forecast,
    MeterSummary,
    counts_from_rows,
    report_from_counts,
    report_from_meters,
    suppliers_of,
)
from openecos.migration.emrr_render import render_csv, render_json, report_json
from openecos.migration.errors import (
    CredentialsUnreadable,
    IllegalTransition,
    InvalidMigrationInput,
    MigrationError,
    RegimeChangeProblem,
    RegimeChangeRefused,
    ReportInconsistent,
    UpdateRefused,
)
from openecos.migration.lifecycle import (
    FINAL_STATUSES,
    TRANSITIONS,
    Event,
    OperatorAction,
    allowed_events,
    command_sent,
    credentials_read,
    new_record,
    next_status,
    operator_action,
    read_sent,
    read_timed_out,
    reassess,
    response_received,
    response_timed_out,
)
from openecos.migration.planning import (
    DEFAULT_ORDER,
    RUN_TRANSITIONS,
    Candidate,
    CapacityLimits,
    CapacityUsage,
    OrderField,
    RunEvent,
    RunState,
    headroom,
    may_start,
    next_run_state,
    plan_starts,
)
from openecos.migration.policy import (
    DEFAULT_POLICIES,
    EmehraPolicy,
    ErrorClass,
    RetryPolicy,
    jitter_fraction,
)
from openecos.migration.record import (
    CredentialKnowledge,
    CredentialReading,
    MeterMigration,
    MigrationStatus,
    NextAction,
    Reason,
)
from openecos.migration.regime import (
    LIVE_SERVICE_CRITERIA,
    TCOS_RETIREMENT_CRITERIA,
    Approval,
    Criterion,
    CriterionResult,
    ReadinessCheck,
    Regime,
    RegimeChange,
    RegimeChangePolicy,
    RegimeEvent,
    change_regime,
    migration_may_run,
    next_regime,
)
from openecos.migration.responses import (
    ResponseVerdict,
    SentMigration,
    classify_outcome,
    classify_response,
)
from openecos.migration.routing import (
    ROUTES,
    RefusalReason,
    RoutingConfig,
    RoutingDecision,
    route_update,
)

__all__ = [
    "ACB_KA_CELL",
    "CATEGORY_OF",
    "DEFAULT_ORDER",
    "DEFAULT_POLICIES",
    "ELIGIBLE",
    "FINAL_STATUSES",
    "LIVE_SERVICE_CRITERIA",
    "MESSAGE_CODE",
    "ROUTES",
    "RUN_TRANSITIONS",
    "TCOS_RETIREMENT_CRITERIA",
    "TRANSITIONAL_COS_CELL",
    "TRANSITIONS",
    "AnchorIdentity",
    "Approval",
    "ApprovedModel",
    "ApprovedModels",
    "Candidate",
    "CapacityLimits",
    "CapacityUsage",
    "CountRow",
    "CredentialKnowledge",
    "CredentialReading",
    "CredentialsUnreadable",
    "Criterion",
    "CriterionResult",
    "DailyRow",
    "EcosCredential",
    "Eligibility",
    "EligibilityConfig",
    "EmehraPolicy",
    "EmrrCategory",
    "EmrrCounts",
    "EmrrReport",
    "ErrorClass",
    "Event",
    "Forecast",
    "IllegalTransition",
    "IneligibleReason",
    "InvalidMigrationInput",
    "MeterMigration",
    "MeterSummary",
    "MigrationCommandConfig",
    "MigrationError",
    "MigrationStatus",
    "NextAction",
    "OperatorAction",
    "OrderField",
    "ReadinessCheck",
    "Reason",
    "RefusalReason",
    "Regime",
    "RegimeChange",
    "RegimeChangePolicy",
    "RegimeChangeProblem",
    "RegimeChangeRefused",
    "RegimeEvent",
    "ReportInconsistent",
    "ResponseVerdict",
    "RetryPolicy",
    "RoutingConfig",
    "RoutingDecision",
    "RunEvent",
    "RunState",
    "SentMigration",
    "UpdateRefused",
    "allowed_events",
    "assess",
    "build_credentials_read",
    "build_migration_command",
    "build_trans_cos_by_trans_cos",
    "cell_holder",
    "change_regime",
    "classify_outcome",
    "classify_response",
    "command_sent",
    "count_by_reason",
    "counts_from_rows",
    "credentials_read",
    "credentials_read_content",
    "headroom",
    "interpret_credentials",
    "jitter_fraction",
    "may_start",
    "migration_may_run",
    "new_record",
    "next_regime",
    "next_run_state",
    "next_status",
    "operator_action",
    "plan_starts",
    "read_credentials_response",
    "read_sent",
    "read_timed_out",
    "reading_of",
    "reassess",
    "render_csv",
    "render_json",
    "report_from_counts",
    "report_from_meters",
    "report_json",
    "response_received",
    "response_timed_out",
    "route_update",
    "suppliers_of",
]
