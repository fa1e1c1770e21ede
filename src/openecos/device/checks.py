"""Whether a meter accepts an incoming command at all: the checks before any state change.

Theory of operation. :func:`authenticate` takes the state, the bytes and the
profile and returns either an :class:`AcceptedCommand` (a command this meter
will act on) or a :class:`~openecos.device.state.Rejection` (one it discards,
as a real meter does, without a response). The checks run in this order; the
first failure decides the reason (docs/gbcs-cs02b.md §8.4; every rule there
is marked [G], GBCS background not confirmed against the specification):

1. the bytes decode as a GBCS frame: ``MALFORMED`` otherwise;
2. the CRA flag is command: ``NOT_A_COMMAND``;
3. the recipient system title is this meter (§2.5): ``WRONG_RECIPIENT``;
4. the message code is CS02a (0x0008) or a CS02b mode code (0x0102-0x0109)
   and the content decodes: ``UNSUPPORTED_MESSAGE_CODE`` / ``MALFORMED``;
5. CS02b: the message code is 0x0100 + credentialsReplacementMode
   (``MESSAGE_CODE_MISMATCH``), the mode is one this meter simulates
   (``UNSUPPORTED_MODE``) and [2] names the cell :data:`MODE_RULES` requires for
   it, (transitionalCoS, DS) for 0x0106/0x0107 (``AUTHORISING_CELL_NOT_PERMITTED``);
   CS02a: the authorising cell is the ACB's KA cell;
6. the GMAC verifies with the meter's KA private key and the certificate in
   its ACB KA cell (§3.2): ``MAC_MISSING`` / ``MAC_INVALID`` / ``NO_TRUST_ANCHOR``;
   Recovery commands travel without a MAC (§2.1) and skip this when bare;
7. CS02b: the signature verifies with the anchor in the authorising cell
   (§3.1): ``SIGNATURE_INVALID`` / ``NO_TRUST_ANCHOR``;
8. CS02b: [3] exceeds the stored seq number of the authorising party:
   ``SEQ_NUMBER_NOT_GREATER``;
9. CS02b: every target cell is one the mode permits, none twice, and a
   command that is not a cancellation replaces something:
   ``TARGET_NOT_PERMITTED`` / ``DUPLICATE_TARGET`` / ``NO_REPLACEMENTS``.

A target the mode does not permit discards the whole command (the authorising
party is not entitled to it) rather than failing one cell: this project's
choice, so such a command provably changes nothing. Certificate problems, by
contrast, are per-cell statuses decided later (:mod:`openecos.device.rules`).
CS02a carries no seq number and reads nothing it could replay into a change,
so it has no replay check here [G].
"""

from __future__ import annotations

from dataclasses import dataclass

from openecos.device.cells import ACB_KA_CELL, SEQ_NUMBER_SLOTS
from openecos.device.rules import MODE_RULES, ModeRule
from openecos.device.state import MeterProfile, MeterState, Rejection, RejectionReason
from openecos.gbcs.codes import CraFlag, MessageCode, RemotePartyRole
from openecos.gbcs.cs02a import ProvideSecurityCredentialDetailsCommand
from openecos.gbcs.cs02b import UpdateSecurityCredentialsCommand
from openecos.gbcs.errors import GbcsError, MacInvalid, SignatureInvalid
from openecos.gbcs.frame import GbcsFrame, decode_frame
from openecos.gbcs.payload import decode_payload
from openecos.gbcs.security import verify_mac_with, verify_signature

_CS02A = MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS
_CS02B_MODE_CODES = range(0x0102, 0x010A)


@dataclass(frozen=True, slots=True)
class AcceptedCommand:
    """A command that passed :func:`authenticate`; ``rule`` is ``None`` for CS02a."""

    frame: GbcsFrame
    content: UpdateSecurityCredentialsCommand | ProvideSecurityCredentialDetailsCommand
    rule: ModeRule | None
    authorising_role: RemotePartyRole


def _reject(reason: RejectionReason, detail: str = "", counter: int | None = None) -> Rejection:
    return Rejection(reason, detail, counter)


def authenticate(
    state: MeterState, message: bytes, profile: MeterProfile
) -> AcceptedCommand | Rejection:
    """Runs the checks of the module docstring; never raises for any input bytes."""
    try:
        frame = decode_frame(bytes(message))
    except (GbcsError, ValueError) as exc:
        return _reject(RejectionReason.MALFORMED, str(exc))
    apdu = frame.apdu
    counter = apdu.originator_counter
    if apdu.cra_flag is not CraFlag.COMMAND:
        return _reject(RejectionReason.NOT_A_COMMAND, apdu.cra_flag.name, counter)
    if apdu.recipient != state.device:
        return _reject(RejectionReason.WRONG_RECIPIENT, str(apdu.recipient), counter)
    code = apdu.message_code
    if code != _CS02A and code not in _CS02B_MODE_CODES:
        return _reject(RejectionReason.UNSUPPORTED_MESSAGE_CODE, f"0x{code:04X}", counter)
    try:
        content = decode_payload(frame)
    except (GbcsError, ValueError) as exc:
        return _reject(RejectionReason.MALFORMED, str(exc), counter)
    if isinstance(content, ProvideSecurityCredentialDetailsCommand):
        return _authenticate_cs02a(state, frame, content, profile)
    if isinstance(content, UpdateSecurityCredentialsCommand):
        return _authenticate_cs02b(state, frame, content, profile)
    return _reject(RejectionReason.MALFORMED, type(content).__name__, counter)


def _check_mac(
    state: MeterState, frame: GbcsFrame, profile: MeterProfile, *, required: bool
) -> Rejection | None:
    counter = frame.apdu.originator_counter
    if frame.ciphering is None:
        return _reject(RejectionReason.MAC_MISSING, "", counter) if required else None
    acb = state.cell(ACB_KA_CELL)
    if acb is None:
        return _reject(RejectionReason.NO_TRUST_ANCHOR, "ACB KA cell is empty", counter)
    try:
        # §3.2: ECDH(meter KA private, ACB KA anchor), then the GBCS KDF and GMAC.
        verify_mac_with(frame, profile.keys.key_agreement(state.device), acb.public_key)
    except MacInvalid as exc:
        return _reject(RejectionReason.MAC_INVALID, str(exc), counter)
    return None


def _authenticate_cs02a(
    state: MeterState,
    frame: GbcsFrame,
    content: ProvideSecurityCredentialDetailsCommand,
    profile: MeterProfile,
) -> AcceptedCommand | Rejection:
    counter = frame.apdu.originator_counter
    if content.authorising_remote_party_ta_cell != ACB_KA_CELL:
        detail = repr(content.authorising_remote_party_ta_cell)
        return _reject(RejectionReason.AUTHORISING_CELL_NOT_PERMITTED, detail, counter)
    failure = _check_mac(state, frame, profile, required=True)
    if failure is not None:
        return failure
    return AcceptedCommand(frame, content, None, RemotePartyRole.ACCESS_CONTROL_BROKER)


def _authenticate_cs02b(
    state: MeterState,
    frame: GbcsFrame,
    content: UpdateSecurityCredentialsCommand,
    profile: MeterProfile,
) -> AcceptedCommand | Rejection:
    apdu = frame.apdu
    counter = apdu.originator_counter
    control = content.authorising_remote_party_control
    mode = control.credentials_replacement_mode
    # §4.1, §8.4 [G]: for modes 2-9 the message code is 0x0100 + mode.
    if apdu.message_code != 0x0100 + mode:
        detail = f"0x{apdu.message_code:04X} with mode {int(mode)}"
        return _reject(RejectionReason.MESSAGE_CODE_MISMATCH, detail, counter)
    rule = MODE_RULES.get(mode)
    if rule is None:
        return _reject(RejectionReason.UNSUPPORTED_MODE, mode.name, counter)
    if control.authorising_remote_party_ta_cell != rule.authorising_cell:
        detail = f"{control.authorising_remote_party_ta_cell!r} for {mode.name}"
        return _reject(RejectionReason.AUTHORISING_CELL_NOT_PERMITTED, detail, counter)
    failure = _check_mac(state, frame, profile, required=rule.mac_required)
    if failure is not None:
        return failure
    if rule.authorising_cell is None:
        # ACB by ACB: unsigned, authenticated by the MAC alone (§2.1); its party is the ACB.
        role = RemotePartyRole.ACCESS_CONTROL_BROKER
    else:
        role = rule.authorising_cell.remote_party_role
        anchor = state.cell(rule.authorising_cell)
        if anchor is None:
            return _reject(RejectionReason.NO_TRUST_ANCHOR, repr(rule.authorising_cell), counter)
        try:
            # §8.4 [G]: verified with the anchor in the cell named by [2], not by the originator.
            verify_signature(frame, anchor.public_key)
        except SignatureInvalid as exc:
            return _reject(RejectionReason.SIGNATURE_INVALID, str(exc), counter)
    # §8.4 [G]: replay protection, [3] must exceed the stored value for this party.
    stored = state.seq_numbers[SEQ_NUMBER_SLOTS[role]]
    seq = control.authorising_remote_party_seq_number
    if seq <= stored:
        detail = f"{seq} <= stored {stored}"
        return _reject(RejectionReason.SEQ_NUMBER_NOT_GREATER, detail, counter)
    targets = [r.target_trust_anchor_cell for r in content.replacements]
    if not targets and not content.is_cancellation:
        return _reject(RejectionReason.NO_REPLACEMENTS, "", counter)
    for target in targets:
        if target not in rule.targets:
            return _reject(RejectionReason.TARGET_NOT_PERMITTED, repr(target), counter)
    if len(set(targets)) != len(targets):
        return _reject(RejectionReason.DUPLICATE_TARGET, "", counter)
    return AcceptedCommand(frame, content, rule, role)
