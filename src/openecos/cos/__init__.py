"""``openecos.cos``: the Change of Supplier Party's decisions for SR 6.23 (pure).

Values in, values out; no I/O and no clock. The service (``openecos.service``)
assembles inputs from the store and applies the results:

- :mod:`~openecos.cos.checks`: every 6.23 check, in order, first failure wins
  (:func:`check_request` → :class:`CheckedRequest` or :class:`CosRejected`);
- :mod:`~openecos.cos.tad`: Threshold Anomaly Detection (:func:`assess`,
  :func:`release`) over a JSON-persistable :class:`TadState`;
- :mod:`~openecos.cos.routing`: TCoS or ECoS Party by the meter's credential state;
- :mod:`~openecos.cos.command`: the CS02b 0x0107 content and signed, MACed bytes;
- :mod:`~openecos.cos.matching` / :mod:`~openecos.cos.outcomes`: device answers
  tied to their command, and what follows (inventory, lifecycle, messages due);
- :mod:`~openecos.cos.lifecycle`: the request state machine, one table.
"""

from openecos.cos.checks import (
    CHECK_RESPONSE_CODES,
    METER_TYPES,
    CheckConfig,
    CheckedRequest,
    CheckInputs,
    CosCheck,
    check_request,
    registration_instant,
)
from openecos.cos.command import (
    AUTHORISING_CELL,
    build_cos_command,
    build_supplier_by_trans_cos,
)
from openecos.cos.errors import (
    CosError,
    CosRejected,
    DeviceMessageProblem,
    DeviceMessageRefused,
    IllegalTransition,
    InvalidCounter,
    NotQuarantined,
)
from openecos.cos.lifecycle import (
    FINAL_STATES,
    TRANSITIONS,
    RequestEvent,
    allowed_events,
    next_status,
)
from openecos.cos.matching import (
    DeviceMessage,
    DeviceMessageKind,
    match_command,
    read_device_message,
    verify_device_message,
)
from openecos.cos.outcomes import (
    CellResult,
    DccAlertDue,
    DeviceAlertDue,
    DueMessage,
    InventoryUpdate,
    Outcome,
    OutcomeConfig,
    ServiceResponseDue,
    derive_outcome,
    no_response_outcome,
)
from openecos.cos.replacements import (
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    CheckedReplacement,
)
from openecos.cos.routing import CosParties, CosParty, route
from openecos.cos.tad import (
    Decision,
    Quarantine,
    TadConfig,
    TadState,
    TadStateInvalid,
    Verdict,
    assess,
    discard,
    release,
)

__all__ = [
    "AUTHORISING_CELL",
    "CHECK_RESPONSE_CODES",
    "FINAL_STATES",
    "METER_TYPES",
    "SUPPLIER_DS_CELL",
    "SUPPLIER_KA_CELL",
    "SUPPLIER_KA_TOP_UP_CELL",
    "TRANSITIONS",
    "CellResult",
    "CheckConfig",
    "CheckInputs",
    "CheckedReplacement",
    "CheckedRequest",
    "CosCheck",
    "CosError",
    "CosParties",
    "CosParty",
    "CosRejected",
    "DccAlertDue",
    "Decision",
    "DeviceAlertDue",
    "DeviceMessage",
    "DeviceMessageKind",
    "DeviceMessageProblem",
    "DeviceMessageRefused",
    "DueMessage",
    "IllegalTransition",
    "InvalidCounter",
    "InventoryUpdate",
    "NotQuarantined",
    "Outcome",
    "OutcomeConfig",
    "Quarantine",
    "RequestEvent",
    "ServiceResponseDue",
    "TadConfig",
    "TadState",
    "TadStateInvalid",
    "Verdict",
    "allowed_events",
    "assess",
    "build_cos_command",
    "build_supplier_by_trans_cos",
    "check_request",
    "derive_outcome",
    "discard",
    "match_command",
    "next_status",
    "no_response_outcome",
    "read_device_message",
    "registration_instant",
    "release",
    "route",
    "verify_device_message",
]
