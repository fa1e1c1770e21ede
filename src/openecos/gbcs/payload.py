"""Which content a frame carries, and the one consistency check the codec offers.

Theory of operation. The content type of a General-Signing APDU follows from
its message code and CRA flag (docs/gbcs-cs02b.md §8.1): 0x0008 is CS02a,
0x00CB the CS02b alert, 0x0100-0x0109 CS02b, a command when the CRA flag says
so and a response otherwise. :func:`decode_payload` decodes the content in
place, so its errors carry offsets into the frame. It does not judge: a mode
that disagrees with the message code decodes, and :func:`check_message_code`
is there for whoever must decide (a meter, the CoS Party before it signs).
"""

from __future__ import annotations

from openecos.gbcs.codes import CraFlag, MessageCode
from openecos.gbcs.cs02b import UpdateSecurityCredentialsCommand
from openecos.gbcs.decode import (
    Content,
    command_in_frame,
    decode_update_security_credentials_alert,
    decode_update_security_credentials_response,
)
from openecos.gbcs.decode_cs02a import (
    decode_provide_security_credential_details_command,
    decode_provide_security_credential_details_response,
)
from openecos.gbcs.errors import DecodeError, DecodeReason, MessageCodeMismatch
from openecos.gbcs.frame import GbcsFrame

# Plain ints: enum attribute access costs ~85 ns on 3.11, and this is the hot path.
_CS02A = int(MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS)
_ALERT = int(MessageCode.CS02B_UPDATE_SECURITY_CREDENTIALS_ALERT)
_CS02B_FIRST = int(MessageCode.CS02B_ROOT_BY_SUPPLIER)
_CS02B_LAST = int(MessageCode.CS02B_ANY_BY_CONTINGENCY)
_COMMAND = CraFlag.COMMAND


def decode_payload(frame: GbcsFrame) -> Content:
    """Decodes the CS02a/CS02b content of ``frame``; offsets in errors are frame offsets."""
    apdu = frame.apdu
    code = apdu.message_code
    if (
        apdu.cra_flag is _COMMAND
        and _CS02B_FIRST <= code <= _CS02B_LAST
        and not apdu.supplementary_information
    ):  # the hot path: a CS02b command
        return command_in_frame(frame.raw, frame.content_start, frame.content_end)
    is_cs02a = code == _CS02A
    is_alert = code == _ALERT
    is_cs02b = _CS02B_FIRST <= code <= _CS02B_LAST
    if not (is_cs02a or is_alert or is_cs02b):
        raise DecodeError(
            DecodeReason.UNSUPPORTED,
            frame.other_information_start,
            f"message code 0x{code:04X} is not CS02a or CS02b",
        )
    if apdu.supplementary_information:
        # CS02a/CS02b other-information is the message code alone (§2.2).
        raise DecodeError(
            DecodeReason.UNSUPPORTED,
            frame.other_information_start,
            "CS02a/CS02b other-information is the message code alone",
        )
    raw, start, end = frame.raw, frame.content_start, frame.content_end
    command = apdu.cra_flag is _COMMAND
    if is_alert:
        return decode_update_security_credentials_alert(raw, start, end)
    if is_cs02a:
        if command:
            return decode_provide_security_credential_details_command(raw, start, end)
        return decode_provide_security_credential_details_response(raw, start, end)
    if command:
        return command_in_frame(raw, start, end)
    return decode_update_security_credentials_response(raw, start, end)


def check_message_code(message_code: int, command: UpdateSecurityCredentialsCommand) -> None:
    """Raises :class:`MessageCodeMismatch` unless the mode is the one the code names.

    For modes 2-9 the message code is 0x0100 + mode (§4.1).
    """
    mode = command.authorising_remote_party_control.credentials_replacement_mode
    if message_code != 0x0100 + mode:
        raise MessageCodeMismatch(message_code, mode)
