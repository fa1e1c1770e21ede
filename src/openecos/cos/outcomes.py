"""What a meter's answer to a 6.23 command means: inventory, lifecycle, messages due.

Theory of operation. Given a matched and verified
:class:`~openecos.cos.matching.DeviceMessage`, the command it answers (the
CS02b value that was sent) and the request's ID, :func:`derive_outcome`
returns one :class:`Outcome` for the service to persist and send:

- the lifecycle event for the request (:mod:`openecos.cos.lifecycle`) and the
  command's next status;
- the inventory update (:class:`InventoryUpdate`): each targeted supplier
  cell with the status the meter reported and, where it succeeded, the
  :class:`~openecos.store.records.TrustAnchorCell` it now holds. A partial
  failure replaces some cells only; the request then fails, and the cells
  that did change are still recorded;
- the DUIS messages due (:data:`DueMessage`): to the new supplier, the
  service response (I0; with the ExecutionOutcome for an immediate command,
  without it, as ``commandAccepted``, for a future-dated one or a
  cancellation) or the future-dated device alert (0x8F66/0x8F67 with the
  outcome); the DCC alerts ChangeOfSupplier to the losing supplier and
  SecurityCredentialsUpdated to the new one, once the supplier cells changed.

The losing supplier is the entity the meter reports as the existing holder of
the supplier digital-signing cell (the supplier's organisation certificate
names its user ID). Which DCC alert code goes with which alert is DUIS's, not
public here: :class:`OutcomeConfig` holds them, with PROVISIONAL defaults.

:func:`no_response_outcome` is the outcome of silence (E21, or E30 for a
future-dated command whose alert never came).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from openecos.cos.errors import DeviceMessageProblem, DeviceMessageRefused
from openecos.cos.lifecycle import RequestEvent
from openecos.cos.matching import DeviceMessage, DeviceMessageKind
from openecos.duis.codes import DccAlertCode, ResponseCode
from openecos.duis.mmc import (
    ExecutionOutcomeReport,
    MmcHeader,
    RemotePartySeqNumberChangeReport,
    ReplacementOutcomeReport,
)
from openecos.duis.request_id import RequestId
from openecos.duis.response import (
    CertificateType,
    ChangeOfSupplierAlert,
    DccAlert,
    SecurityCredentialsUpdatedAlert,
    UpdatedCertificate,
)
from openecos.eui import Eui64
from openecos.gbcs.codes import (
    AlertCode,
    CellUsage,
    CredentialsReplacementMode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    StatusCode,
)
from openecos.gbcs.cs02b import (
    ExecutionOutcome,
    TrustAnchorCellIdentifier,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsCommand,
)
from openecos.smki import CertificateError, SmkiCertificate
from openecos.store.enums import CommandStatus
from openecos.store.records import TrustAnchorCell


@dataclass(frozen=True, slots=True)
class OutcomeConfig:
    """The DCC alert codes to use (PROVISIONAL: DUIS assigns them; not public here)."""

    change_of_supplier_code: DccAlertCode = DccAlertCode.N42
    security_credentials_updated_code: DccAlertCode = DccAlertCode.N43


@dataclass(frozen=True, slots=True)
class CellResult:
    """One targeted cell: what the meter reported (None: not reported) and what it holds."""

    cell: TrustAnchorCellIdentifier
    status: StatusCode | None
    installed: TrustAnchorCell | None  # the new contents, when status is success


@dataclass(frozen=True, slots=True)
class InventoryUpdate:
    """The changes to a meter's trust-anchor cells after a 6.23 executed."""

    device: Eui64
    cells: tuple[CellResult, ...]

    @property
    def installed(self) -> tuple[TrustAnchorCell, ...]:
        return tuple(c.installed for c in self.cells if c.installed is not None)

    @property
    def complete(self) -> bool:
        return all(c.status is StatusCode.SUCCESS for c in self.cells)


@dataclass(frozen=True, slots=True)
class ServiceResponseDue:
    """A DUIS service response (``build_service_response``) and its MMC form."""

    recipient: Eui64
    request_id: RequestId
    response_code: ResponseCode
    gbcs_payload: bytes
    mmc_header: MmcHeader
    execution_outcome: ExecutionOutcomeReport | None


@dataclass(frozen=True, slots=True)
class DeviceAlertDue:
    """The future-dated device alert (``build_future_dated_device_alert``) and its MMC form."""

    recipient: Eui64
    request_id: RequestId
    alert_code: AlertCode
    gbcs_payload: bytes
    mmc_header: MmcHeader
    execution_outcome: ExecutionOutcomeReport


@dataclass(frozen=True, slots=True)
class DccAlertDue:
    """A DCC alert (``build_dcc_alert``) to one user."""

    recipient: Eui64
    alert_code: DccAlertCode
    alert: DccAlert
    request_id: RequestId | None = None


DueMessage = ServiceResponseDue | DeviceAlertDue | DccAlertDue


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything that follows from one device answer (or its absence).

    ``cancels_pending`` is set when a cancellation succeeded: the device's
    pending future-dated 6.23 gets the ``CANCELLED`` event and its command the
    ``CANCELLED`` status.
    """

    request_id: RequestId
    event: RequestEvent
    command_status: CommandStatus
    inventory: InventoryUpdate | None
    due: tuple[DueMessage, ...]
    cancels_pending: bool = False


def _inconsistent(detail: str) -> DeviceMessageRefused:
    return DeviceMessageRefused(DeviceMessageProblem.OUTCOME_INCONSISTENT, detail)


_CERTIFICATE_TYPES = {
    (KeyUsage.DIGITAL_SIGNATURE, CellUsage.MANAGEMENT): CertificateType.DIGITAL_SIGNING,
    (KeyUsage.KEY_AGREEMENT, CellUsage.MANAGEMENT): CertificateType.KEY_AGREEMENT,
    (KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP): CertificateType.KEY_AGREEMENT_TOP_UP,
}


def derive_outcome(
    message: DeviceMessage,
    command: UpdateSecurityCredentialsCommand,
    request_id: RequestId,
    *,
    current_cells: Iterable[TrustAnchorCell] = (),
    config: OutcomeConfig | None = None,
) -> Outcome:
    """The outcome of ``message``, which answers ``command`` sent for ``request_id``.

    ``current_cells`` are the meter's cells in the inventory before this
    command (for the SHA-1 of the replaced certificates in the MMC report).
    Raises :class:`DeviceMessageRefused` (OUTCOME_INCONSISTENT) when the
    answer contradicts the command.
    """
    config = config or OutcomeConfig()
    requester = request_id.originator
    header = MmcHeader(
        business_originator_id=message.device,
        business_target_id=requester,
        originator_counter=message.frame.apdu.originator_counter,
        message_code=MessageCode(message.frame.apdu.message_code),
    )
    outcome = message.execution_outcome
    mode = command.authorising_remote_party_control.credentials_replacement_mode
    if mode is not CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS:
        raise _inconsistent(f"command mode {mode!r} is not supplierByTransCoS")

    if message.kind is DeviceMessageKind.RESPONSE and outcome is None:
        # commandAccepted alone: a future-dated command stored, or a cancellation done.
        if not (command.is_future_dated or command.is_cancellation):
            raise _inconsistent("an immediate command was answered without an outcome")
        response = ServiceResponseDue(
            requester, request_id, ResponseCode.I0, message.raw, header, None
        )
        if command.is_cancellation:
            return Outcome(
                request_id,
                RequestEvent.RESPONSE_SUCCESS,
                CommandStatus.SUCCEEDED,
                None,
                (response,),
                cancels_pending=True,
            )
        return Outcome(
            request_id,
            RequestEvent.FUTURE_DATED_ACCEPTED,
            CommandStatus.AWAITING_EXECUTION,
            None,
            (response,),
        )

    assert outcome is not None  # a response with one, or an alert (always has one)
    if message.kind is DeviceMessageKind.ALERT and not command.is_future_dated:
        raise _inconsistent("a future-dated alert for a command that was not future-dated")
    _check_outcome(outcome, command)
    inventory = _inventory(message.device, outcome, command)
    report = _report(outcome, command, current_cells)
    succeeded = inventory.complete
    if isinstance(message.content, UpdateSecurityCredentialsAlert):
        alert_code = message.content.alert_code
        succeeded = succeeded and alert_code is AlertCode.FUTURE_DATED_COMMAND_ACTIONED
        first: DueMessage = DeviceAlertDue(
            requester, request_id, alert_code, message.raw, header, report
        )
        event = RequestEvent.ALERT_SUCCESS if succeeded else RequestEvent.ALERT_FAILURE
    else:
        first = ServiceResponseDue(
            requester, request_id, ResponseCode.I0, message.raw, header, report
        )
        event = RequestEvent.RESPONSE_SUCCESS if succeeded else RequestEvent.RESPONSE_FAILURE
    due = (first, *_dcc_alerts(message.device, outcome, inventory, request_id, config))
    status = CommandStatus.SUCCEEDED if succeeded else CommandStatus.FAILED
    return Outcome(request_id, event, status, inventory, due)


def no_response_outcome(
    request_id: RequestId, *, awaiting_alert: bool
) -> tuple[Outcome, ResponseCode]:
    """The outcome of silence: the meter's state is unknown until read (CommandStatus).

    ``awaiting_alert``: the command was accepted for future execution and its
    alert is overdue (E30); otherwise the response never came (E21).
    """
    code = ResponseCode.E30 if awaiting_alert else ResponseCode.E21
    return (
        Outcome(request_id, RequestEvent.NO_RESPONSE, CommandStatus.OUTCOME_UNKNOWN, None, ()),
        code,
    )


def _check_outcome(outcome: ExecutionOutcome, command: UpdateSecurityCredentialsCommand) -> None:
    control = command.authorising_remote_party_control
    if outcome.authorising_remote_party_seq_number != control.authorising_remote_party_seq_number:
        raise _inconsistent(
            f"outcome seq number {outcome.authorising_remote_party_seq_number}, command "
            f"{control.authorising_remote_party_seq_number}"
        )
    if outcome.credentials_replacement_mode is not control.credentials_replacement_mode:
        raise _inconsistent(f"outcome mode {outcome.credentials_replacement_mode!r}")
    targeted = {r.target_trust_anchor_cell for r in command.replacements}
    seen: set[TrustAnchorCellIdentifier] = set()
    for r in outcome.replacement_outcomes:
        cell = r.affected_trust_anchor_cell
        if cell not in targeted or cell in seen:
            raise _inconsistent(f"outcome for cell {cell} the command did not target once")
        seen.add(cell)


def _inventory(
    device: Eui64, outcome: ExecutionOutcome, command: UpdateSecurityCredentialsCommand
) -> InventoryUpdate:
    reported = {r.affected_trust_anchor_cell: r for r in outcome.replacement_outcomes}
    results: list[CellResult] = []
    for replacement in command.replacements:
        cell = replacement.target_trust_anchor_cell
        r = reported.get(cell)
        installed: TrustAnchorCell | None = None
        if r is not None and r.status_code is StatusCode.SUCCESS:
            der = replacement.replacement_certificate
            _check_identity(der, r.replacing_subject_unique_id, r.replacing_subject_key_id)
            installed = TrustAnchorCell(
                role=cell.remote_party_role,
                key_usage=cell.key_usage,
                cell_usage=cell.cell_usage,
                certificate_der=der,
                subject_eui=r.replacing_subject_unique_id,
                ski=r.replacing_subject_key_id,
            )
        results.append(CellResult(cell, None if r is None else r.status_code, installed))
    return InventoryUpdate(device, tuple(results))


def _check_identity(der: bytes, eui: Eui64, ski: bytes) -> None:
    """The meter reports the EUI and SKI of what it installed: they must be the sent one's."""
    try:
        certificate = SmkiCertificate.from_der(der)
    except CertificateError as exc:  # the checks parsed it before it was sent
        raise _inconsistent(f"sent certificate unreadable: {exc}") from exc
    if certificate.entity_eui != eui or certificate.subject_key_identifier != ski:
        raise _inconsistent(
            f"meter installed {eui}/{ski.hex().upper()}, the command carried "
            f"{certificate.entity_eui}/{(certificate.subject_key_identifier or b'').hex().upper()}"
        )


def _report(
    outcome: ExecutionOutcome,
    command: UpdateSecurityCredentialsCommand,
    current_cells: Iterable[TrustAnchorCell],
) -> ExecutionOutcomeReport:
    """The MMC ``ExecutionOutcome`` (docs/ecos-domain.md §A6): hashes are SHA-1 of the DER."""
    sent = {r.target_trust_anchor_cell: r.replacement_certificate for r in command.replacements}
    held = {c.ski: c.certificate_der for c in current_cells}
    change = next(iter(outcome.remote_party_seq_number_changes), None)
    seq_change = None
    if change is not None:
        top_up = next(iter(change.specialist_floor_seq_numbers or ()), None)
        seq_change = RemotePartySeqNumberChangeReport(
            change.remote_party_role,
            change.floor_seq_number,
            None if top_up is None else top_up.seq_number,
        )
    reports = []
    for r in outcome.replacement_outcomes:
        cell = r.affected_trust_anchor_cell
        old = held.get(r.existing_subject_key_id)
        new = sent[cell] if r.status_code is StatusCode.SUCCESS else None
        reports.append(
            ReplacementOutcomeReport(
                status=r.status_code,
                certificate_type=_CERTIFICATE_TYPES[(cell.key_usage, cell.cell_usage)],
                remote_party_role=cell.remote_party_role,
                existing_remote_party_id=r.existing_subject_unique_id,
                new_remote_party_id=r.replacing_subject_unique_id,
                existing_certificate_hash=None if old is None else hashlib.sha1(old).digest(),
                new_certificate_hash=None if new is None else hashlib.sha1(new).digest(),
            )
        )
    return ExecutionOutcomeReport(
        authorising_remote_party_originator_counter=outcome.authorising_remote_party_seq_number,
        credentials_replacement_mode=outcome.credentials_replacement_mode,
        seq_number_change=seq_change,
        replacement_outcomes=tuple(reports),
    )


def _dcc_alerts(
    device: Eui64,
    outcome: ExecutionOutcome,
    inventory: InventoryUpdate,
    request_id: RequestId,
    config: OutcomeConfig,
) -> tuple[DccAlertDue, ...]:
    if not inventory.installed:
        return ()
    alerts: list[DccAlertDue] = []
    ds = next(
        (
            r
            for r in outcome.replacement_outcomes
            if r.affected_trust_anchor_cell.key_usage is KeyUsage.DIGITAL_SIGNATURE
            and r.status_code is StatusCode.SUCCESS
        ),
        None,
    )
    # The losing supplier: whoever held the supplier DS cell, if it was someone else.
    if ds is not None and ds.existing_subject_unique_id != ds.replacing_subject_unique_id:
        alerts.append(
            DccAlertDue(
                ds.existing_subject_unique_id,
                config.change_of_supplier_code,
                ChangeOfSupplierAlert(request_id),
            )
        )
    change = next(iter(outcome.remote_party_seq_number_changes), None)
    top_up = None if change is None else next(iter(change.specialist_floor_seq_numbers or ()), None)
    alerts.append(
        DccAlertDue(
            request_id.originator,
            config.security_credentials_updated_code,
            SecurityCredentialsUpdatedAlert(
                device_id=device,
                remote_party_role=RemotePartyRole.SUPPLIER,
                certificates=tuple(
                    UpdatedCertificate(
                        _CERTIFICATE_TYPES[(c.key_usage, c.cell_usage)],
                        hashlib.sha1(c.certificate_der).digest(),
                    )
                    for c in inventory.installed
                ),
                floor_seq_number=None if change is None else change.floor_seq_number,
                prepayment_top_up_floor_seq_number=None if top_up is None else top_up.seq_number,
            ),
            request_id,
        )
    )
    return tuple(alerts)
