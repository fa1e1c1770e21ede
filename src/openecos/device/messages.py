"""The messages a simulated meter sends: CS02b responses, 0x00CB alerts, CS02a responses.

Theory of operation. Values in, bytes out, in the exact shape the RTDS meter
uses (docs/gbcs-cs02b.md §2.1, §2.4, §2.5, §5.3, §5.4): originator and
recipient swapped, the command's originator counter echoed, the device
length style (``82 00 LL``) inside the content, the DLMS date-time on CS02b
responses and none on alerts, signed with the meter's DS key. An alert
carries the meter's own counter and goes to whoever sent the future-dated
command. CS02a responses are unsigned (``00``) and MACed with the meter's KA
key and the ACB's KA anchor, as RTDS 6.24.1 shows.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from openecos.device.cells import METER_CELLS, SEQ_NUMBER_SLOTS, AnchorCertificate
from openecos.device.state import MeterOutput, MeterProfile, MeterState, OutputKind
from openecos.eui import Eui64
from openecos.gbcs.builder import build_apdu
from openecos.gbcs.codes import (
    AlertCode,
    CellUsage,
    CraFlag,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    StatusCode,
)
from openecos.gbcs.cs02a import (
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyDetails,
    TrustAnchorCellContents,
)
from openecos.gbcs.cs02b import (
    ExecutionOutcome,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
)
from openecos.gbcs.security import mac_apdu_with
from openecos.gbcs.tlv import LengthStyle


def cs02b_response(
    state: MeterState,
    profile: MeterProfile,
    *,
    recipient: Eui64,
    originator_counter: int,
    message_code: int,
    outcome: ExecutionOutcome | None,
) -> MeterOutput:
    """commandAccepted, with the execution outcome for an immediate command (§5.3)."""
    apdu = build_apdu(
        cra_flag=CraFlag.RESPONSE,
        originator=state.device,
        recipient=recipient,
        originator_counter=originator_counter,
        message_code=message_code,
        content=UpdateSecurityCredentialsResponse(outcome),
        signer=profile.keys.signer(state.device),
        date_time=profile.response_date_time,
        length_style=LengthStyle.DEVICE,
    )
    return MeterOutput(OutputKind.RESPONSE, recipient, originator_counter, apdu.encode())


def cs02b_alert(
    state: MeterState,
    profile: MeterProfile,
    *,
    recipient: Eui64,
    execution_date_time: datetime,
    outcome: ExecutionOutcome,
) -> MeterOutput:
    """The 0x00CB alert: 8F66 when every replacement succeeded, else 8F67 (§5.4)."""
    succeeded = all(o.status_code is StatusCode.SUCCESS for o in outcome.replacement_outcomes)
    code = (
        AlertCode.FUTURE_DATED_COMMAND_ACTIONED
        if succeeded
        else AlertCode.FUTURE_DATED_COMMAND_NOT_ACTIONED
    )
    apdu = build_apdu(
        cra_flag=CraFlag.ALERT,
        originator=state.device,
        recipient=recipient,
        originator_counter=state.alert_counter,
        message_code=MessageCode.CS02B_UPDATE_SECURITY_CREDENTIALS_ALERT,
        content=UpdateSecurityCredentialsAlert(code, execution_date_time, outcome),
        signer=profile.keys.signer(state.device),
        length_style=LengthStyle.DEVICE,
    )
    return MeterOutput(OutputKind.ALERT, recipient, state.alert_counter, apdu.encode())


def credential_details(
    state: MeterState, roles: tuple[RemotePartyRole, ...]
) -> ProvideSecurityCredentialDetailsResponse:
    """For each role asked about: its seq number and the cells it fills, or trustAnchorNotFound."""
    details: list[RemotePartyDetails] = []
    for role in roles:
        contents = tuple(
            _contents(cell_id.key_usage, cell_id.cell_usage, anchor)
            for cell_id, anchor in zip(METER_CELLS, state.cells, strict=True)
            if anchor is not None and cell_id.remote_party_role is role
        )
        if not contents:
            details.append(RemotePartyDetails(role, StatusCode.TRUST_ANCHOR_NOT_FOUND))
            continue
        slot = SEQ_NUMBER_SLOTS.get(role)
        seq = 0 if slot is None else state.seq_numbers[slot]
        details.append(RemotePartyDetails(role, StatusCode.SUCCESS, seq, contents))
    return ProvideSecurityCredentialDetailsResponse(tuple(details))


def _contents(
    usage: KeyUsage, cell_usage: CellUsage, anchor: AnchorCertificate
) -> TrustAnchorCellContents:
    return TrustAnchorCellContents(
        usage, anchor.subject_unique_id, anchor.subject_key_id, cell_usage
    )


def cs02a_response(
    state: MeterState,
    profile: MeterProfile,
    *,
    recipient: Eui64,
    originator_counter: int,
    roles: tuple[RemotePartyRole, ...],
    acb_key_agreement_key: EllipticCurvePublicKey,
) -> MeterOutput:
    """The CS02a response: unsigned, no date-time, MACed (RTDS 6.24.1)."""
    apdu = build_apdu(
        cra_flag=CraFlag.RESPONSE,
        originator=state.device,
        recipient=recipient,
        originator_counter=originator_counter,
        message_code=MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS,
        content=credential_details(state, roles),
        signer=None,
        length_style=LengthStyle.DEVICE,
    )
    message = mac_apdu_with(apdu, profile.keys.key_agreement(state.device), acb_key_agreement_key)
    return MeterOutput(OutputKind.RESPONSE, recipient, originator_counter, message)
