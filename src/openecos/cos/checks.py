"""Every check the CoS Party makes on a 6.23 before it signs, in one ordered pipeline.

Theory of operation. The service assembles one frozen :class:`CheckInputs`
from the store and the receiver (the request, the bound signer's EUI, the
user, the device, the registered supplier of the MPxN at
:func:`registration_instant`, the in-flight command's status, the time, the
trust anchors and :class:`CheckConfig`); :func:`check_request` runs the
checks of :class:`CosCheck` in the order of that enum and raises
:class:`~openecos.cos.errors.CosRejected` for the FIRST failure, or returns
a :class:`CheckedRequest` holding everything the command builder needs. No
I/O, no clock: ``now`` is an input.

The order is deliberate (docs/ecos-domain.md §B, §H.3):

1. who is asking (user known, role IS/GS, signer = RequestID originator): an
   unauthorised sender learns nothing about devices or registrations;
2. the body alone (execution time, floor seq numbers): no state revealed;
3. registration: the requester is the registered supplier of ``ImportMPxN``
   at the execution instant, through the MPID → user ID mapping, so a party
   with several MPIDs ("split supplier", ecos-domain §S) passes only with the
   user ID that holds the registered MPID. Only then is anything said about
   the device: it exists, serves that MPxN (before its type or status, so a
   supplier cannot probe other meters), is a meter and is Commissioned;
4. the certificates (parsing and ECDSA: the expensive part);
5. the one transient condition, a credential-changing command already in
   flight, last, so a request that is wrong for a lasting reason gets that
   reason rather than "busy".

Response codes are in one table, :data:`CHECK_RESPONSE_CODES`. E1, E2, E4,
E5, E11 and E19 carry their published DUIS meanings (docs/duis-xmldsig-smki.md
§1.3); the meanings of E062301..E062306 are in SEC Appendix AD, which is not
public (docs/ecos-domain.md, Gaps), so their use here is PROVISIONAL and
chosen to give each family of 6.23-specific failure its own code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from openecos.cos.errors import CosRejected
from openecos.cos.replacements import CheckedReplacement, check_replacements
from openecos.duis.codes import ResponseCode
from openecos.duis.request import ExecutionKind, ServiceRequest
from openecos.duis.request_id import RequestId
from openecos.eui import Eui64
from openecos.gbcs.cs02b import CANCELLATION_DATE_TIME
from openecos.smki import ZAZ1_ORGANISATION_POLICY, SmkiCertificate
from openecos.store.enums import (
    SUPPLIER_ROLES,
    CommandStatus,
    DeviceStatus,
    DeviceType,
)
from openecos.store.records import Device, PartyUser, RegisteredSupplier

U64_MAX = (1 << 64) - 1


class CosCheck(StrEnum):
    """The checks of a 6.23, in the order :func:`check_request` makes them."""

    USER_KNOWN = "user-known"
    USER_ROLE = "user-role"
    SIGNER_IS_ORIGINATOR = "signer-is-originator"
    EXECUTION_TIME = "execution-time"
    FLOOR_SEQ_NUMBERS = "floor-seq-numbers"
    REGISTERED_SUPPLIER = "registered-supplier"
    DEVICE_KNOWN = "device-known"
    DEVICE_SERVES_MPXN = "device-serves-mpxn"
    DEVICE_TYPE = "device-type"
    DEVICE_COMMISSIONED = "device-commissioned"
    REPLACEMENT_CERTIFICATES = "replacement-certificates"
    REPLACEMENT_OWNER = "replacement-owner"
    CERTIFICATION_PATH = "certification-path"
    CERTIFICATE_VALIDITY = "certificate-validity"  # found while walking the path
    COMMAND_IN_FLIGHT = "command-in-flight"


#: The DUIS response code of each check. (P) = provisional: SEC Appendix AD not available.
CHECK_RESPONSE_CODES: MappingProxyType[CosCheck, ResponseCode] = MappingProxyType(
    {
        CosCheck.USER_KNOWN: ResponseCode.E1,  # Invalid User
        CosCheck.USER_ROLE: ResponseCode.E2,  # User Role not permitted for the Service Reference
        # Invalid User: as openecos.duis does for a signer not bound to the originator.
        CosCheck.SIGNER_IS_ORIGINATOR: ResponseCode.E1,
        CosCheck.EXECUTION_TIME: ResponseCode.E062301,  # (P) 6.23 body value invalid
        CosCheck.FLOOR_SEQ_NUMBERS: ResponseCode.E062301,  # (P) 6.23 body value invalid
        # User Role not authorised for the Device at that time: the registration check.
        CosCheck.REGISTERED_SUPPLIER: ResponseCode.E4,
        CosCheck.DEVICE_KNOWN: ResponseCode.E19,  # Device does not exist
        CosCheck.DEVICE_SERVES_MPXN: ResponseCode.E062302,  # (P) ImportMPxN not the device's
        CosCheck.DEVICE_TYPE: ResponseCode.E11,  # Service Request / device type mismatch
        CosCheck.DEVICE_COMMISSIONED: ResponseCode.E5,  # Device status incompatible
        CosCheck.REPLACEMENT_CERTIFICATES: ResponseCode.E062303,  # (P) role, usage, readable
        CosCheck.REPLACEMENT_OWNER: ResponseCode.E062304,  # (P) not the requester's
        CosCheck.CERTIFICATION_PATH: ResponseCode.E062305,  # (P) path validation failed
        CosCheck.CERTIFICATE_VALIDITY: ResponseCode.E062305,  # (P) path validation: time
        CosCheck.COMMAND_IN_FLIGHT: ResponseCode.E062306,  # (P) another change in progress
    }
)

#: Devices a 6.23 can target: the meters, whose supplier cells it replaces.
METER_TYPES = frozenset({DeviceType.ESME, DeviceType.GSME})


def reject(check: CosCheck, detail: str) -> CosRejected:
    """The rejection for ``check``, with its code from :data:`CHECK_RESPONSE_CODES`."""
    return CosRejected(check, CHECK_RESPONSE_CODES[check], detail)


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """Policy of the checks (configuration, not trust)."""

    #: The replacement certificates' entity must be the requester (docs/duis-xmldsig-smki.md
    #: §1.5: the DUIS templates send supplier 2's certificates from supplier 1).
    require_certificates_of_requester: bool = True
    #: Certificate policy OIDs accepted on every non-anchor certificate of a path.
    accepted_policies: frozenset[str] = frozenset({ZAZ1_ORGANISATION_POLICY})
    #: Device types a 6.23 may target.
    device_types: frozenset[DeviceType] = METER_TYPES


@dataclass(frozen=True, slots=True)
class CheckInputs:
    """Everything the checks read, assembled by the service; no check does I/O.

    ``signer`` is the entity EUI of the certificate whose signature verified
    and that :func:`openecos.duis.check_signer_binding` accepted (None when
    there is none). ``user`` is the user record of the RequestID originator,
    ``device`` the inventory record of its target, ``registered_supplier`` the
    answer of ``RegistrationRepository.registered_supplier(ImportMPxN,
    registration_instant(body, now))``; each is None when the store has none.
    ``in_flight_command`` is the status of the device's credential-changing
    command in flight (``CommandRepository.in_flight``), or None.
    """

    request: ServiceRequest
    signer: Eui64 | None
    user: PartyUser | None
    device: Device | None
    registered_supplier: RegisteredSupplier | None
    in_flight_command: CommandStatus | None
    now: datetime
    trust_anchors: tuple[SmkiCertificate, ...]
    config: CheckConfig = field(default_factory=CheckConfig)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("CheckInputs.now must be timezone-aware")


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A 6.23 that passed every check: what the command builder and the outcome need.

    ``execution_date_time`` is None for an immediate request, the instant in
    whole seconds (rounded up, never earlier than asked) for a future-dated
    one, and :data:`~openecos.gbcs.cs02b.CANCELLATION_DATE_TIME` for a
    cancellation. ``replacements`` are in GBCS order (DS, KA, KA top-up).
    """

    request_id: RequestId
    device: Eui64
    import_mpxn: str
    kind: ExecutionKind
    execution_date_time: datetime | None
    supplier_floor_seq_number: int
    supplier_prepayment_top_up_floor_seq_number: int | None
    replacements: tuple[CheckedReplacement, ...]
    certification_path: tuple[bytes, ...]
    apply_time_based_cpv_checks: bool

    @property
    def requester(self) -> Eui64:
        return self.request_id.originator


def registration_instant(request: ServiceRequest, now: datetime) -> datetime:
    """The instant at which the requester must be the registered supplier.

    Immediate and cancellation: ``now``; future-dated: the execution date-time
    (docs/ecos-domain.md §H.3), when the new credentials take effect.
    """
    body = request.body
    if body.kind is ExecutionKind.FUTURE_DATED and body.execution_date_time is not None:
        return body.execution_date_time
    return now


def check_request(inputs: CheckInputs) -> CheckedRequest:
    """Runs the 6.23 checks in :class:`CosCheck` order; raises ``CosRejected`` on the first."""
    for step in _PIPELINE:
        step(inputs)
    request, body, device = inputs.request, inputs.request.body, inputs.device
    assert device is not None  # DEVICE_KNOWN passed
    replacements = check_replacements(
        body.replacement_certificates,
        body.certification_path_certificates,
        requester=request.header.request_id.originator,
        require_certificates_of_requester=inputs.config.require_certificates_of_requester,
        apply_time_based_cpv_checks=body.apply_time_based_cpv_checks,
        now=inputs.now,
        anchors=inputs.trust_anchors,
        policies=inputs.config.accepted_policies,
        reject=lambda stage, detail: reject(_CERTIFICATE_STAGES[stage], detail),
    )
    _command_in_flight(inputs)
    return CheckedRequest(
        request_id=request.header.request_id,
        device=device.eui,
        import_mpxn=body.import_mpxn,
        kind=body.kind,
        execution_date_time=_gbcs_execution_time(inputs),
        supplier_floor_seq_number=body.supplier_floor_seq_number,
        supplier_prepayment_top_up_floor_seq_number=body.supplier_prepayment_top_up_floor_seq_number,
        replacements=replacements,
        certification_path=body.certification_path_certificates,
        apply_time_based_cpv_checks=body.apply_time_based_cpv_checks,
    )


_CERTIFICATE_STAGES = {
    "certificate": CosCheck.REPLACEMENT_CERTIFICATES,
    "owner": CosCheck.REPLACEMENT_OWNER,
    "path": CosCheck.CERTIFICATION_PATH,
    "validity": CosCheck.CERTIFICATE_VALIDITY,
}


# -- the checks, each raising its own rejection ---------------------------------------------


def _originator(inputs: CheckInputs) -> Eui64:
    return inputs.request.header.request_id.originator


def _user_known(inputs: CheckInputs) -> None:
    user = inputs.user
    if user is None or user.user_id != _originator(inputs):
        raise reject(CosCheck.USER_KNOWN, f"{_originator(inputs)} is not a known user ID")


def _user_role(inputs: CheckInputs) -> None:
    assert inputs.user is not None
    # DUIS request matrix: 6.23 is open to Import Suppliers and Gas Suppliers only (§A1).
    if not inputs.user.roles & SUPPLIER_ROLES:
        roles = ", ".join(sorted(r.value for r in inputs.user.roles))
        raise reject(CosCheck.USER_ROLE, f"user roles {roles} may not send 6.23 (IS or GS only)")


def _signer_is_originator(inputs: CheckInputs) -> None:
    if inputs.signer is None or inputs.signer != _originator(inputs):
        raise reject(
            CosCheck.SIGNER_IS_ORIGINATOR,
            f"signed by {inputs.signer}, the RequestID originator is {_originator(inputs)}",
        )


def _execution_time(inputs: CheckInputs) -> None:
    body = inputs.request.body
    when = body.execution_date_time
    if when is None or body.kind is ExecutionKind.CANCELLATION:
        return
    if when.tzinfo is None or when.utcoffset() is None:
        raise reject(CosCheck.EXECUTION_TIME, "ExecutionDateTime has no timezone")
    if when <= inputs.now:
        raise reject(
            CosCheck.EXECUTION_TIME,
            f"ExecutionDateTime {when.isoformat()} is not after {inputs.now.isoformat()}",
        )
    # GBCS 99991231235959Z means "cancel": a future-dated time must stay below it.
    if _whole_seconds(when) is None:
        raise reject(
            CosCheck.EXECUTION_TIME,
            f"ExecutionDateTime {when.isoformat()} is not below the GBCS cancellation time",
        )


def _floor_seq_numbers(inputs: CheckInputs) -> None:
    body = inputs.request.body
    floors = [("SupplierFloorSeqNumber", body.supplier_floor_seq_number)]
    if body.supplier_prepayment_top_up_floor_seq_number is not None:  # optional in DUIS
        top_up = body.supplier_prepayment_top_up_floor_seq_number
        floors.append(("SupplierPrepaymentTopUpFloorSeqNumber", top_up))
    for name, value in floors:
        # GBCS seq numbers are unsigned 64-bit (DUIS further limits them to 2^63-1).
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
            raise reject(CosCheck.FLOOR_SEQ_NUMBERS, f"{name} {value!r} is not an unsigned 64-bit")


def _registered_supplier(inputs: CheckInputs) -> None:
    body = inputs.request.body
    instant = registration_instant(inputs.request, inputs.now)
    registered = inputs.registered_supplier
    where = f"{body.import_mpxn} at {instant.astimezone(UTC).isoformat()}"
    # A registration proves something only for this MPxN and this instant.
    if (
        registered is None
        or registered.registration.mpxn != body.import_mpxn
        or not registered.registration.covers(instant)
    ):
        raise reject(CosCheck.REGISTERED_SUPPLIER, f"no registered supplier for {where}")
    # Split suppliers: the user ID that holds the registered MPID, not any of the party's.
    if registered.user_id != _originator(inputs):
        raise reject(
            CosCheck.REGISTERED_SUPPLIER,
            f"{_originator(inputs)} is not the user ID of MPID "
            f"{registered.registration.supplier_mpid}, registered supplier of {where}",
        )


def _device_known(inputs: CheckInputs) -> None:
    target = inputs.request.header.request_id.target
    if inputs.device is None or inputs.device.eui != target:
        raise reject(CosCheck.DEVICE_KNOWN, f"device {target} is not in the inventory")


def _device_serves_mpxn(inputs: CheckInputs) -> None:
    assert inputs.device is not None
    if inputs.device.mpxn != inputs.request.body.import_mpxn:
        raise reject(
            CosCheck.DEVICE_SERVES_MPXN,
            f"device {inputs.device.eui} does not serve {inputs.request.body.import_mpxn}",
        )


def _device_type(inputs: CheckInputs) -> None:
    assert inputs.device is not None
    if inputs.device.device_type not in inputs.config.device_types:
        raise reject(CosCheck.DEVICE_TYPE, f"6.23 does not apply to a {inputs.device.device_type}")


def _device_commissioned(inputs: CheckInputs) -> None:
    assert inputs.device is not None
    if inputs.device.status is not DeviceStatus.COMMISSIONED:
        raise reject(CosCheck.DEVICE_COMMISSIONED, f"device status is {inputs.device.status}")


def _command_in_flight(inputs: CheckInputs) -> None:
    status = inputs.in_flight_command
    if status is None:
        return
    # A cancellation exists to stop the future-dated command the meter holds.
    if (
        inputs.request.body.kind is ExecutionKind.CANCELLATION
        and status is CommandStatus.AWAITING_EXECUTION
    ):
        return
    raise reject(
        CosCheck.COMMAND_IN_FLIGHT, f"a credential-changing command is in flight ({status})"
    )


_PIPELINE: tuple[Callable[[CheckInputs], None], ...] = (
    _user_known,
    _user_role,
    _signer_is_originator,
    _execution_time,
    _floor_seq_numbers,
    _registered_supplier,
    _device_known,
    _device_serves_mpxn,
    _device_type,
    _device_commissioned,
)


def _whole_seconds(when: datetime) -> datetime | None:
    """``when`` in UTC rounded up to a whole second, or None if it reaches the cancel time."""
    utc = when.astimezone(UTC)
    if utc.microsecond:
        if utc >= CANCELLATION_DATE_TIME:
            return None
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return None if utc >= CANCELLATION_DATE_TIME else utc


def _gbcs_execution_time(inputs: CheckInputs) -> datetime | None:
    body = inputs.request.body
    if body.kind is ExecutionKind.IMMEDIATE:
        return None
    if body.kind is ExecutionKind.CANCELLATION:
        return CANCELLATION_DATE_TIME
    assert body.execution_date_time is not None
    result = _whole_seconds(body.execution_date_time)
    assert result is not None  # EXECUTION_TIME passed
    return result
