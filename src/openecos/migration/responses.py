"""What a meter's answer to a 0x0106 means for the migration: success or an error class.

Theory of operation. The meter answers a 0x0106 it accepted with a signed
CS02b response carrying an ExecutionOutcome: one ReplacementOutcome for the
transitionalCoS DS cell with a per-cell status code and the subject EUI and
key ID now in the cell (docs/gbcs-cs02b.md §5.2). A command it discards gets
no answer at all (device/checks.py), which the engine reports as
:attr:`~openecos.migration.policy.ErrorClass.NO_RESPONSE` at the deadline.

:func:`classify_response` takes the bytes and what was sent
(:class:`SentMigration`) and decides, in order:

1. the bytes decode as a GBCS frame, else MALFORMED_RESPONSE;
2. it is a response (CRA 2) with message code 0x0106, from the meter, to the
   TCoS Party, echoing the command's counter (§2.5), else RESPONSE_MISMATCH;
3. the meter's signature verifies with its DS key, else SIGNATURE_INVALID;
4. the content decodes, else MALFORMED_RESPONSE; it carries an outcome for
   this seq number and mode 6 with exactly one cell, the transitionalCoS DS
   cell, else RESPONSE_MISMATCH;
5. :func:`classify_outcome`: status success *and* the replacing IDs are the
   ECoS certificate's → migrated (``None``); success with other IDs →
   RESPONSE_MISMATCH; resourcesBusy / insufficientMemory → METER_BUSY;
   badCertificate, noTrustAnchor, trustAnchorNotFound → their classes;
   anything else → REJECTED.

Classes that leave the outcome in doubt (mismatch, malformed, signature) have
``read_credentials_first`` in their default policy, so the lifecycle reads
the cell before any retry; nothing here trusts an answer it cannot verify.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs import (
    CraFlag,
    CredentialsReplacementMode,
    ExecutionOutcome,
    GbcsError,
    StatusCode,
    UpdateSecurityCredentialsResponse,
    decode_frame,
    decode_payload,
    verify_signature,
)
from openecos.migration.command import MESSAGE_CODE, TRANSITIONAL_COS_CELL, AnchorIdentity
from openecos.migration.policy import ErrorClass

_STATUS_CLASSES = {
    StatusCode.RESOURCES_BUSY: ErrorClass.METER_BUSY,
    StatusCode.INSUFFICIENT_MEMORY: ErrorClass.METER_BUSY,
    StatusCode.BAD_CERTIFICATE: ErrorClass.BAD_CERTIFICATE,
    StatusCode.NO_TRUST_ANCHOR: ErrorClass.NO_TRUST_ANCHOR,
    StatusCode.TRUST_ANCHOR_NOT_FOUND: ErrorClass.TRUST_ANCHOR_NOT_FOUND,
}


@dataclass(frozen=True, slots=True)
class SentMigration:
    """What the engine sent: to whom, from whom, with which counter, placing which anchor."""

    device: Eui64
    tcos: Eui64
    originator_counter: int
    ecos: AnchorIdentity


@dataclass(frozen=True, slots=True)
class ResponseVerdict:
    """The classification: ``error`` ``None`` means migrated; ``detail`` says why otherwise."""

    error: ErrorClass | None
    detail: str = ""
    outcome: ExecutionOutcome | None = None

    @property
    def migrated(self) -> bool:
        return self.error is None


def classify_outcome(outcome: ExecutionOutcome, sent: SentMigration) -> ResponseVerdict:
    """Step 4 (outcome shape) and 5 of the module docstring, over a decoded outcome."""
    if (
        outcome.authorising_remote_party_seq_number != sent.originator_counter
        or outcome.credentials_replacement_mode
        is not CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS
    ):
        return ResponseVerdict(ErrorClass.RESPONSE_MISMATCH, "seq number or mode", outcome)
    cells = outcome.replacement_outcomes
    if len(cells) != 1 or cells[0].affected_trust_anchor_cell != TRANSITIONAL_COS_CELL:
        return ResponseVerdict(
            ErrorClass.RESPONSE_MISMATCH, "not one transitionalCoS cell", outcome
        )
    cell = cells[0]
    if cell.status_code is StatusCode.SUCCESS:
        replacing = AnchorIdentity(cell.replacing_subject_unique_id, cell.replacing_subject_key_id)
        if replacing != sent.ecos:
            return ResponseVerdict(
                ErrorClass.RESPONSE_MISMATCH, "success, but not the ECoS certificate", outcome
            )
        return ResponseVerdict(None, "", outcome)
    error = _STATUS_CLASSES.get(cell.status_code, ErrorClass.REJECTED)
    return ResponseVerdict(error, f"status {cell.status_code.name}", outcome)


def classify_response(
    message: bytes, *, sent: SentMigration, device_signing_key: ec.EllipticCurvePublicKey
) -> ResponseVerdict:
    """Classifies the meter's answer (module docstring); never raises for any bytes."""
    try:
        frame = decode_frame(bytes(message))
    except (GbcsError, ValueError) as exc:
        return ResponseVerdict(ErrorClass.MALFORMED_RESPONSE, str(exc))
    apdu = frame.apdu
    if (
        apdu.cra_flag is not CraFlag.RESPONSE
        or apdu.message_code != MESSAGE_CODE
        or apdu.originator != sent.device
        or apdu.recipient != sent.tcos
        or apdu.originator_counter != sent.originator_counter
    ):
        return ResponseVerdict(ErrorClass.RESPONSE_MISMATCH, "header does not answer the command")
    try:
        verify_signature(frame, device_signing_key)
    except GbcsError as exc:
        return ResponseVerdict(ErrorClass.SIGNATURE_INVALID, str(exc))
    try:
        content = decode_payload(frame)
    except (GbcsError, ValueError) as exc:
        return ResponseVerdict(ErrorClass.MALFORMED_RESPONSE, str(exc))
    if not isinstance(content, UpdateSecurityCredentialsResponse):
        return ResponseVerdict(ErrorClass.RESPONSE_MISMATCH, type(content).__name__)
    if content.execution_outcome is None:
        return ResponseVerdict(ErrorClass.RESPONSE_MISMATCH, "no execution outcome")
    return classify_outcome(content.execution_outcome, sent)
