"""A request's outcome in the MMC's XML (``UpdateSecurityCredentialsCoSRsp``), on demand.

Theory of operation. The DUIS service response to the new supplier is a
signed ``sr:Response`` whose ``sr:ResponseMessage`` carries the meter's
answer as ``GBCSPayload``: in DUIS V5.4 that element is one branch of an
``xs:choice``, so the same document cannot also hold MMC (``ra:``) XML. The
ExecutionOutcome travels inside the GBCS payload, signed by the meter, where
the supplier can verify it end to end. The MMC form is what a DCC User's
Parse & Correlate makes of that payload; :func:`mmc_outcome` makes it for the
API (docs/ecos-domain.md §A5, §A6) from what the store keeps: the command
sent and the meter's last answer to it, read and interpreted by
:func:`openecos.cos.outcomes.derive_outcome` exactly as when it arrived. The
hashes of the certificates the meter replaced come from the known
certificates (the SKIs the meter reported); an unknown one is left out, as
the MMC allows. Nothing is written: the view costs nothing on the hot path.
"""

from __future__ import annotations

from openecos.cos.matching import DeviceMessage, read_device_message
from openecos.cos.outcomes import DeviceAlertDue, ServiceResponseDue, derive_outcome
from openecos.cos.routing import CosParties
from openecos.duis import (
    RequestId,
    build_update_security_credentials_alert,
    build_update_security_credentials_cos_rsp,
)
from openecos.gbcs import decode_frame, decode_payload
from openecos.gbcs.cs02b import UpdateSecurityCredentialsAlert, UpdateSecurityCredentialsCommand
from openecos.smki import CertificateError, SmkiCertificate
from openecos.store import Store, TrustAnchorCell


def mmc_outcome(store: Store, parties: CosParties, request_id: str) -> bytes | None:
    """The MMC ``GBCSResponse`` for the meter's last answer to the request, or None.

    Raises ``NotFound`` for an unknown request; None while no answer has come.
    """
    record = store.requests.get(request_id)
    rid = RequestId(record.originator, record.target, record.counter)
    for command in reversed(store.commands.for_request(request_id)):
        if command.response is None:
            continue
        message = read_device_message(command.response, parties)
        sent = decode_payload(decode_frame(command.payload))
        if not isinstance(sent, UpdateSecurityCredentialsCommand):
            return None
        outcome = derive_outcome(message, sent, rid, current_cells=_replaced(store, message))
        first = outcome.due[0]
        if isinstance(first, ServiceResponseDue):
            return build_update_security_credentials_cos_rsp(
                first.mmc_header, first.execution_outcome
            )
        if isinstance(first, DeviceAlertDue) and isinstance(
            message.content, UpdateSecurityCredentialsAlert
        ):
            return build_update_security_credentials_alert(
                first.mmc_header,
                first.alert_code,
                message.content.execution_date_time,
                first.execution_outcome,
            )
    return None


def _replaced(store: Store, message: DeviceMessage) -> list[TrustAnchorCell]:
    """The certificates the meter reports it replaced, where the DCC knows them."""
    outcome = message.execution_outcome
    if outcome is None:
        return []
    cells = []
    for r in outcome.replacement_outcomes:
        cell = r.affected_trust_anchor_cell
        for known in store.certificates.by_subject(
            r.existing_subject_unique_id, None, cell.key_usage
        ):
            try:
                ski = SmkiCertificate.from_der(known.der).subject_key_identifier
            except CertificateError:
                continue
            if ski == r.existing_subject_key_id:
                cells.append(
                    TrustAnchorCell(
                        cell.remote_party_role,
                        cell.key_usage,
                        cell.cell_usage,
                        known.der,
                        r.existing_subject_unique_id,
                        ski,
                    )
                )
    return cells
