"""Device answers to 6.23 commands: read them, tie them to their command, believe them.

Theory of operation. A meter answers a 0x0107 command with a response
(CRA 2, message code 0x0107) and, for a future-dated command, later with a
0x00CB alert (CRA 3, alert 0x8F66 done / 0x8F67 not done). Both are
addressed to the CoS Party that signed the command, not to the supplier
(docs/ecos-domain.md §A5). The command is known by (signer, originator
counter), unique because every counter is reserved once
(``store.CommandRecord``):

- a response echoes the command's originator counter in its header
  (docs/gbcs-cs02b.md §5.3);
- an alert carries the meter's own counter in its header, and the command's
  in the ExecutionOutcome's authorising seq number (§5.4).

:func:`read_device_message` decodes the bytes and gives that key;
:func:`verify_device_message` checks the meter's signature with its
digital-signing certificate from the inventory; :func:`match_command` checks
the message answers the command the service looked up by the key. Each
refusal is a :class:`~openecos.cos.errors.DeviceMessageRefused` naming the
problem. Pure: bytes and certificates in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from openecos.cos.errors import DeviceMessageProblem, DeviceMessageRefused
from openecos.cos.routing import CosParties, CosParty
from openecos.eui import Eui64
from openecos.gbcs import (
    DecodeError,
    GbcsFrame,
    SignatureInvalid,
    decode_frame,
    decode_payload,
    verify_signature,
)
from openecos.gbcs.codes import CraFlag, KeyUsage, MessageCode
from openecos.gbcs.cs02b import (
    ExecutionOutcome,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
)
from openecos.smki import CertificateError, SmkiCertificate
from openecos.store.records import CommandRecord

_RESPONSE_CODE = MessageCode.CS02B_SUPPLIER_BY_TRANS_COS
_ALERT_CODE = MessageCode.CS02B_UPDATE_SECURITY_CREDENTIALS_ALERT


class DeviceMessageKind(StrEnum):
    RESPONSE = "response"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class DeviceMessage:
    """A decoded 6.23 response or 0x00CB alert, and the command it answers.

    ``command_counter`` is the originator counter of the command it answers;
    ``(cos_party.entity_eui, command_counter)`` is the command's key.
    """

    kind: DeviceMessageKind
    frame: GbcsFrame
    device: Eui64
    cos_party: CosParty
    command_counter: int
    content: UpdateSecurityCredentialsResponse | UpdateSecurityCredentialsAlert

    @property
    def key(self) -> tuple[Eui64, int]:
        return self.cos_party.entity_eui, self.command_counter

    @property
    def raw(self) -> bytes:
        """The bytes as received (relayed to the user as GBCSPayload)."""
        return self.frame.raw

    @property
    def execution_outcome(self) -> ExecutionOutcome | None:
        return self.content.execution_outcome


def _refuse(problem: DeviceMessageProblem, detail: str) -> DeviceMessageRefused:
    return DeviceMessageRefused(problem, detail)


def read_device_message(data: bytes, parties: CosParties) -> DeviceMessage:
    """Decodes a meter's 6.23 response or 0x00CB alert addressed to a CoS Party."""
    try:
        frame = decode_frame(data)
    except DecodeError as exc:
        raise _refuse(DeviceMessageProblem.UNDECODABLE, str(exc)) from exc
    apdu = frame.apdu
    if apdu.cra_flag is CraFlag.RESPONSE:
        kind, expected = DeviceMessageKind.RESPONSE, _RESPONSE_CODE
    elif apdu.cra_flag is CraFlag.ALERT:
        kind, expected = DeviceMessageKind.ALERT, _ALERT_CODE
    else:
        raise _refuse(DeviceMessageProblem.NOT_FROM_DEVICE, f"CRA flag {apdu.cra_flag!r}")
    if apdu.message_code != expected:
        raise _refuse(
            DeviceMessageProblem.WRONG_MESSAGE_CODE,
            f"{kind.value} with message code 0x{apdu.message_code:04X}",
        )
    party = parties.by_eui(apdu.recipient)
    if party is None:
        raise _refuse(DeviceMessageProblem.UNKNOWN_RECIPIENT, f"recipient {apdu.recipient}")
    try:
        content = decode_payload(frame)
    except DecodeError as exc:
        raise _refuse(DeviceMessageProblem.UNDECODABLE, str(exc)) from exc
    if isinstance(content, UpdateSecurityCredentialsAlert):
        counter = content.execution_outcome.authorising_remote_party_seq_number
    elif isinstance(content, UpdateSecurityCredentialsResponse):
        counter = apdu.originator_counter
        outcome = content.execution_outcome
        if outcome is not None and outcome.authorising_remote_party_seq_number != counter:
            raise _refuse(
                DeviceMessageProblem.OUTCOME_INCONSISTENT,
                f"outcome seq number {outcome.authorising_remote_party_seq_number}, "
                f"header counter {counter}",
            )
    else:  # the message code fixes the content type; this is a decoder contract breach
        raise _refuse(DeviceMessageProblem.UNDECODABLE, f"unexpected {type(content).__name__}")
    return DeviceMessage(kind, frame, apdu.originator, party, counter, content)


def verify_device_message(message: DeviceMessage, device_certificate: bytes) -> None:
    """Checks the meter signed ``message`` with the key of its DS certificate (DER).

    The certificate is the device's digital-signing certificate from the
    inventory; it must name the message's originator as its device.
    """
    try:
        certificate = SmkiCertificate.from_der(device_certificate)
    except CertificateError as exc:
        raise _refuse(DeviceMessageProblem.WRONG_CERTIFICATE, str(exc)) from exc
    if certificate.device_eui != message.device:
        raise _refuse(
            DeviceMessageProblem.WRONG_CERTIFICATE,
            f"certificate of {certificate.device_eui}, message from {message.device}",
        )
    if certificate.key_usage is not KeyUsage.DIGITAL_SIGNATURE:
        raise _refuse(DeviceMessageProblem.WRONG_CERTIFICATE, "not a digital-signing certificate")
    try:
        verify_signature(message.frame, certificate.public_key)
    except SignatureInvalid as exc:
        raise _refuse(DeviceMessageProblem.SIGNATURE_INVALID, str(exc)) from exc


def match_command(message: DeviceMessage, command: CommandRecord) -> None:
    """Checks ``message`` answers ``command`` (looked up by :attr:`DeviceMessage.key`)."""
    if (command.signer, command.originator_counter) != message.key:
        raise _refuse(
            DeviceMessageProblem.COMMAND_MISMATCH,
            f"command ({command.signer}, {command.originator_counter}), message key "
            f"({message.key[0]}, {message.key[1]})",
        )
    if command.message_code is not _RESPONSE_CODE:
        raise _refuse(
            DeviceMessageProblem.COMMAND_MISMATCH,
            f"command 0x{command.message_code:04X} is not a 6.23 command",
        )
    if command.device != message.device:
        raise _refuse(
            DeviceMessageProblem.WRONG_DEVICE,
            f"command to {command.device}, message from {message.device}",
        )
