"""The simulated meter's CS02b/CS02a behaviour: one transition table.

Theory of operation. Everything that changes a meter's state lives in this
file. A meter is in one of two phases: ``IDLE``, or ``PENDING`` when it holds
a future-dated CS02b command. Inputs are bytes (with the time they arrive),
the passing of time, and reboots; the caller supplies ``now`` (aware UTC) and
the meter never reads a clock or does I/O::

    transition = handle(state, message_bytes, now, profile)
    transition.state, transition.outputs, transition.rejection

An incoming message first goes through :func:`openecos.device.checks.authenticate`
(frame, recipient, message code versus mode, authorising cell, MAC,
signature, seq number, permitted targets; docs/gbcs-cs02b.md §8.4 [G]). A
message that fails is discarded: no output, the state unchanged, and a
:class:`~openecos.device.state.Rejection` naming the reason. An accepted
message becomes one of the events below, and :data:`TRANSITIONS` says what
happens:

=========  =========================  ====================================  =========
phase      event                      action (and output)                   next
=========  =========================  ====================================  =========
IDLE       IMMEDIATE                  apply now; response + outcome         IDLE
PENDING    IMMEDIATE                  apply now; response + outcome         PENDING
IDLE       FUTURE_DATED               judge, hold; response (accepted)      PENDING
PENDING    FUTURE_DATED               judge, hold, replacing the held one   PENDING
IDLE       CANCELLATION               nothing to cancel; response           IDLE
PENDING    CANCELLATION               held one is of another code; resp.    PENDING
PENDING    CANCELLATION_OF_PENDING    drop the held command; response       IDLE
any        CREDENTIALS_READ (CS02a)   report cells; MACed response          same
any        BUSY (injected fault)      response, every cell resourcesBusy    same
PENDING    DUE (time passed)          apply the held one; 0x00CB alert      IDLE
any        REBOOT (injected fault)    forget the held command               IDLE
=========  =========================  ====================================  =========

Rules the table encodes, each [G] unless the doc confirms it:

* Every accepted CS02b command, whatever its kind, stores its seq number [3]
  as the authorising party's new seq number (replay protection, §8.4). A
  BUSY answer does not consume it.
* An immediate command applies each replacement whose certificate passes
  (:mod:`openecos.device.rules`) and reports every cell's status with the
  existing and replacing subject IDs and key IDs (§5.3; on failure the
  replacing IDs equal the existing). When at least one cell was replaced,
  the floors are applied and reported: [4]/[5] set the authorising party's
  own seq numbers, [6] other parties' (§8.4; in 6.23 [6] sets the supplier's
  floor and its prepayment top-up floor).
* A future-dated command is answered ``commandAccepted`` alone (§8.4). Its
  certificates are judged on receipt (time checks at the receipt time), and
  the verdict is held; it is applied when the caller advances time past the
  execution date-time, and an alert 0x00CB (8F66 all succeeded, 8F67 not)
  goes to the command's originator with the meter's own alert counter
  (§2.5, §5.4). Existing IDs in the alert are read at execution.
* A command whose execution date-time is 99991231235959Z cancels the held
  command if that was sent with the same message code; it is answered
  ``commandAccepted`` either way (§4, §5.3).
* An immediate command leaves a held future-dated command in place: a
  0x0106 migration does not drop a 0x0107 accepted before it, which still
  executes on time (the migration engine relies on this).
* A new future-dated command replaces the one held: a meter holds one.

Due commands are executed at the start of :func:`handle`, so a message and
the passing of time cannot be observed out of order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from enum import StrEnum

from openecos.device.cells import (
    CELL_SLOTS,
    NO_KEY_ID,
    NO_SUBJECT_ID,
    ROOT_CELL,
    SEQ_NUMBER_SLOTS,
    TOP_UP_SEQ_SLOT,
    AnchorCertificate,
)
from openecos.device.checks import AcceptedCommand, authenticate
from openecos.device.messages import cs02a_response, cs02b_alert, cs02b_response
from openecos.device.rules import judge_replacement, read_certification_path
from openecos.device.state import (
    MeterOutput,
    MeterProfile,
    MeterState,
    PendingCommand,
    PlannedReplacement,
    Rejection,
    RejectionReason,
    Transition,
)
from openecos.eui import Eui64
from openecos.gbcs.codes import (
    CredentialsReplacementMode,
    RemotePartyRole,
    SeqNumberUsage,
    StatusCode,
)
from openecos.gbcs.cs02a import ProvideSecurityCredentialDetailsCommand
from openecos.gbcs.cs02b import (
    ExecutionOutcome,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    UpdateSecurityCredentialsCommand,
)
from openecos.smki.path import ValidationTime


class Phase(StrEnum):
    IDLE = "idle"
    PENDING = "future-dated command pending"


class Event(StrEnum):
    IMMEDIATE = "immediate CS02b command"
    FUTURE_DATED = "future-dated CS02b command"
    CANCELLATION = "cancellation with nothing of its kind pending"
    CANCELLATION_OF_PENDING = "cancellation of the pending command"
    CREDENTIALS_READ = "CS02a credentials read"
    BUSY = "command while busy"
    DUE = "execution date-time of the pending command passed"
    REBOOT = "reboot"


Outputs = tuple[MeterOutput, ...]
Action = Callable[
    [MeterState, AcceptedCommand | None, datetime, MeterProfile], tuple[MeterState, Outputs]
]


def phase_of(state: MeterState) -> Phase:
    return Phase.IDLE if state.pending is None else Phase.PENDING


# -- actions ----------------------------------------------------------------------------------


def _cs02b(
    command: AcceptedCommand | None,
) -> tuple[AcceptedCommand, UpdateSecurityCredentialsCommand]:
    assert command is not None and isinstance(command.content, UpdateSecurityCredentialsCommand)
    return command, command.content


def _consume_seq(state: MeterState, command: AcceptedCommand, seq: int) -> MeterState:
    values = list(state.seq_numbers)
    values[SEQ_NUMBER_SLOTS[command.authorising_role]] = seq
    return replace(state, seq_numbers=tuple(values))


def _seq_number_changes(
    content: UpdateSecurityCredentialsCommand, role: RemotePartyRole, state: MeterState
) -> tuple[RemotePartySeqNumberChange, ...]:
    """The floors the command sets, as the outcome reports them: [4]/[5] first, then [6]."""
    control = content.authorising_remote_party_control
    changes: list[RemotePartySeqNumberChange] = []
    floor = control.new_remote_party_floor_seq_number
    specialist = control.new_remote_party_specialist_floor_seq_numbers
    if floor is not None or specialist is not None:
        own = state.seq_numbers[SEQ_NUMBER_SLOTS[role]] if floor is None else floor
        changes.append(RemotePartySeqNumberChange(role, own, specialist))
    changes.extend(control.other_remote_party_seq_number_changes or ())
    return tuple(changes)


def _plan(
    state: MeterState,
    content: UpdateSecurityCredentialsCommand,
    now: datetime,
    profile: MeterProfile,
) -> tuple[PlannedReplacement, ...]:
    control = content.authorising_remote_party_control
    # §8.4: time checks at "now" unless [1] = disapply.
    time = (
        ValidationTime.at(now)
        if control.apply_time_based_cpv_checks
        else ValidationTime.disapplied()
    )
    path = read_certification_path(content.certification_path, profile.certificates)
    root = state.cell(ROOT_CELL)
    return tuple(
        judge_replacement(
            r,
            root=root,
            path=path,
            time=time,
            policies=profile.policies,
            cache=profile.certificates,
        )
        for r in content.replacements
    )


def _ids(anchor: AnchorCertificate | None) -> tuple[Eui64, bytes]:
    if anchor is None:
        return NO_SUBJECT_ID, NO_KEY_ID
    return anchor.subject_unique_id, anchor.subject_key_id


def _execute(
    state: MeterState,
    plan: tuple[PlannedReplacement, ...],
    changes: tuple[RemotePartySeqNumberChange, ...],
    seq: int,
    command_mode: CredentialsReplacementMode,
    profile: MeterProfile,
) -> tuple[MeterState, ExecutionOutcome]:
    cells = list(state.cells)
    outcomes: list[ReplacementOutcome] = []
    for planned in plan:
        slot = CELL_SLOTS[planned.cell]
        existing = cells[slot]
        existing_id, existing_key = _ids(existing)
        if planned.status is StatusCode.SUCCESS and planned.certificate is not None:
            cells[slot] = planned.certificate
            new_id, new_key = (
                planned.certificate.subject_unique_id,
                planned.certificate.subject_key_id,
            )
        else:
            new_id, new_key = existing_id, existing_key
        outcomes.append(
            ReplacementOutcome(
                planned.cell, planned.status, existing_id, existing_key, new_id, new_key
            )
        )
    replaced = any(p.status is StatusCode.SUCCESS for p in plan)
    seq_numbers = list(state.seq_numbers)
    if replaced:
        for change in changes:
            role_slot = SEQ_NUMBER_SLOTS.get(change.remote_party_role)
            if role_slot is None:
                continue
            seq_numbers[role_slot] = change.floor_seq_number
            for specialist in change.specialist_floor_seq_numbers or ():
                if (
                    change.remote_party_role is RemotePartyRole.SUPPLIER
                    and specialist.seq_number_usage is SeqNumberUsage.PREPAYMENT_TOP_UP
                ):
                    seq_numbers[TOP_UP_SEQ_SLOT] = specialist.seq_number
    cache = profile.certificates
    new_state = replace(
        state,
        cells=cache.cells(tuple(cells)),
        seq_numbers=cache.seq_numbers(tuple(seq_numbers)),
    )
    outcome = ExecutionOutcome(
        seq,
        command_mode,
        changes if replaced else (),
        tuple(outcomes),
    )
    return new_state, outcome


def _respond_accepted(
    state: MeterState, command: AcceptedCommand, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    apdu = command.frame.apdu
    output = cs02b_response(
        state,
        profile,
        recipient=apdu.originator,
        originator_counter=apdu.originator_counter,
        message_code=apdu.message_code,
        outcome=None,
    )
    return state, (output,)


def _execute_now(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    command, content = _cs02b(command)
    control = content.authorising_remote_party_control
    seq = control.authorising_remote_party_seq_number
    state = _consume_seq(state, command, seq)
    plan = _plan(state, content, now, profile)
    changes = _seq_number_changes(content, command.authorising_role, state)
    mode = control.credentials_replacement_mode
    state, outcome = _execute(state, plan, changes, seq, mode, profile)
    apdu = command.frame.apdu
    output = cs02b_response(
        state,
        profile,
        recipient=apdu.originator,
        originator_counter=apdu.originator_counter,
        message_code=apdu.message_code,
        outcome=outcome,
    )
    return state, (output,)


def _hold(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    command, content = _cs02b(command)
    control = content.authorising_remote_party_control
    seq = control.authorising_remote_party_seq_number
    state = _consume_seq(state, command, seq)
    assert content.execution_date_time is not None
    pending = PendingCommand(
        originator=command.frame.apdu.originator,
        message_code=command.frame.apdu.message_code,
        mode=control.credentials_replacement_mode,
        seq_number=seq,
        execution_date_time=content.execution_date_time,
        replacements=_plan(state, content, now, profile),
        seq_number_changes=_seq_number_changes(content, command.authorising_role, state),
    )
    return _respond_accepted(replace(state, pending=pending), command, profile)


def _acknowledge(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    command, content = _cs02b(command)
    seq = content.authorising_remote_party_control.authorising_remote_party_seq_number
    return _respond_accepted(_consume_seq(state, command, seq), command, profile)


def _cancel(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    command, content = _cs02b(command)
    seq = content.authorising_remote_party_control.authorising_remote_party_seq_number
    state = replace(_consume_seq(state, command, seq), pending=None)
    return _respond_accepted(state, command, profile)


def _read_credentials(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    assert command is not None
    content = command.content
    assert isinstance(content, ProvideSecurityCredentialDetailsCommand)
    acb = state.cells[CELL_SLOTS[content.authorising_remote_party_ta_cell]]
    assert acb is not None  # authenticate() verified the MAC with it
    apdu = command.frame.apdu
    output = cs02a_response(
        state,
        profile,
        recipient=apdu.originator,
        originator_counter=apdu.originator_counter,
        roles=content.remote_party_roles,
        acb_key_agreement_key=acb.public_key,
    )
    return state, (output,)


def _respond_busy(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    command, content = _cs02b(command)
    control = content.authorising_remote_party_control
    plan = tuple(
        PlannedReplacement(r.target_trust_anchor_cell, StatusCode.RESOURCES_BUSY, None)
        for r in content.replacements
    )
    _, outcome = _execute(
        state,
        plan,
        (),
        control.authorising_remote_party_seq_number,
        control.credentials_replacement_mode,
        profile,
    )
    apdu = command.frame.apdu
    output = cs02b_response(
        state,
        profile,
        recipient=apdu.originator,
        originator_counter=apdu.originator_counter,
        message_code=apdu.message_code,
        outcome=outcome,
    )
    return state, (output,)


def _execute_pending(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    pending = state.pending
    assert pending is not None
    state, outcome = _execute(
        replace(state, pending=None),
        pending.replacements,
        pending.seq_number_changes,
        pending.seq_number,
        pending.mode,
        profile,
    )
    alert = cs02b_alert(
        state,
        profile,
        recipient=pending.originator,
        execution_date_time=pending.execution_date_time,
        outcome=outcome,
    )
    return replace(state, alert_counter=state.alert_counter + 1), (alert,)


def _forget(
    state: MeterState, command: AcceptedCommand | None, now: datetime, profile: MeterProfile
) -> tuple[MeterState, Outputs]:
    return replace(state, pending=None), ()


# -- the table --------------------------------------------------------------------------------

IDLE, PENDING = Phase.IDLE, Phase.PENDING

TRANSITIONS: dict[tuple[Phase, Event], tuple[Action, Phase | None]] = {
    (IDLE, Event.IMMEDIATE): (_execute_now, IDLE),
    (PENDING, Event.IMMEDIATE): (_execute_now, PENDING),
    (IDLE, Event.FUTURE_DATED): (_hold, PENDING),
    (PENDING, Event.FUTURE_DATED): (_hold, PENDING),
    (IDLE, Event.CANCELLATION): (_acknowledge, IDLE),
    (PENDING, Event.CANCELLATION): (_acknowledge, PENDING),
    (PENDING, Event.CANCELLATION_OF_PENDING): (_cancel, IDLE),
    (IDLE, Event.CREDENTIALS_READ): (_read_credentials, IDLE),
    (PENDING, Event.CREDENTIALS_READ): (_read_credentials, PENDING),
    (IDLE, Event.BUSY): (_respond_busy, IDLE),
    (PENDING, Event.BUSY): (_respond_busy, PENDING),
    (PENDING, Event.DUE): (_execute_pending, IDLE),
    (IDLE, Event.REBOOT): (_forget, IDLE),
    (PENDING, Event.REBOOT): (_forget, IDLE),
}
"""(phase, event) → (action, the phase the action must leave the meter in)."""


def _step(
    state: MeterState,
    event: Event,
    command: AcceptedCommand | None,
    now: datetime,
    profile: MeterProfile,
) -> tuple[MeterState, Outputs]:
    action, next_phase = TRANSITIONS[(phase_of(state), event)]
    new_state, outputs = action(state, command, now, profile)
    assert next_phase is None or phase_of(new_state) is next_phase, (event, next_phase)
    return new_state, outputs


def _classify(state: MeterState, command: AcceptedCommand, busy: bool) -> Event:
    content = command.content
    if isinstance(content, ProvideSecurityCredentialDetailsCommand):
        return Event.CREDENTIALS_READ
    if busy:
        return Event.BUSY
    if content.is_cancellation:
        pending = state.pending
        if pending is not None and pending.message_code == command.frame.apdu.message_code:
            return Event.CANCELLATION_OF_PENDING
        return Event.CANCELLATION
    return Event.FUTURE_DATED if content.is_future_dated else Event.IMMEDIATE


# -- public -----------------------------------------------------------------------------------


def advance(state: MeterState, now: datetime, profile: MeterProfile) -> Transition:
    """Lets time pass: executes the held command if its execution date-time is not after ``now``."""
    pending = state.pending
    if pending is None or pending.execution_date_time > now:
        return Transition(state)
    new_state, outputs = _step(state, Event.DUE, None, now, profile)
    return Transition(new_state, outputs)


def handle(
    state: MeterState,
    message: bytes,
    now: datetime,
    profile: MeterProfile,
    *,
    busy: bool = False,
) -> Transition:
    """One incoming message at ``now`` (aware UTC). Never raises for any ``message`` bytes.

    ``busy=True`` simulates a meter that cannot act now (fault injection): an
    authenticated CS02b command is answered with every cell ``resourcesBusy``
    and changes nothing.
    """
    due = advance(state, now, profile)
    state = due.state
    accepted = authenticate(state, message, profile)
    if isinstance(accepted, Rejection):
        return Transition(state, due.outputs, accepted)
    event = _classify(state, accepted, busy)
    new_state, outputs = _step(state, event, accepted, now, profile)
    return Transition(new_state, due.outputs + outputs)


def reboot(state: MeterState, now: datetime, profile: MeterProfile) -> Transition:
    """A reboot at ``now`` (fault injection): the held future-dated command is lost."""
    new_state, outputs = _step(state, Event.REBOOT, None, now, profile)
    return Transition(new_state, outputs)


def broken(state: MeterState) -> Transition:
    """What a permanently broken meter does with any input: nothing."""
    return Transition(state, (), Rejection(RejectionReason.BROKEN))
