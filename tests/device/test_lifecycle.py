"""Future-dated commands, cancellation, migration, credentials reads and injected faults."""

from __future__ import annotations

from datetime import timedelta

from openecos.device import (
    ACB_KA_CELL,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    TRANSITIONAL_COS_CELL,
    TRANSITIONS,
    Event,
    OutputKind,
    Phase,
    RejectionReason,
    advance,
    broken,
    handle,
    phase_of,
    reboot,
)
from openecos.gbcs import (
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
    build_command,
    decode_frame,
    decode_payload,
    verify_mac_with,
)
from openecos.gbcs.codes import (
    AlertCode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    StatusCode,
)
from openecos.gbcs.cs02b import CANCELLATION_DATE_TIME
from openecos.smki.sandbox import (
    ACCESS_CONTROL_BROKER,
    ECOS_PARTY,
    SUPPLIER_A,
    SUPPLIER_B,
    TCOS_PARTY,
)
from tests.device.sandbox import DEVICE, MODE_6, NOW, Sandbox, sandbox

WHEN = NOW + timedelta(days=3)


def _alert(message: bytes) -> UpdateSecurityCredentialsAlert:
    alert = decode_payload(decode_frame(message))
    assert isinstance(alert, UpdateSecurityCredentialsAlert)
    return alert


def _migration(box: Sandbox, seq: int, new_floor: int | None = None) -> bytes:
    replacement = TrustAnchorReplacement(box.der("ecos-ds"), TRANSITIONAL_COS_CELL)
    return box.command((replacement,), mode=MODE_6, seq=seq, floors=None, new_floor=new_floor)


def test_every_phase_and_event_pair_in_the_table_is_deliberate() -> None:
    # Pairs missing from the table cannot occur: DUE needs a pending command and
    # cancelling the pending command needs one too.
    missing = {(p, e) for p in Phase for e in Event} - set(TRANSITIONS)
    assert missing == {
        (Phase.IDLE, Event.DUE),
        (Phase.IDLE, Event.CANCELLATION_OF_PENDING),
    }


def test_a_future_dated_command_alerts_its_originator_at_execution_time() -> None:
    box = sandbox()
    accepted = handle(box.meter, box.command(execution=WHEN), NOW, box.profile).state
    assert advance(accepted, WHEN - timedelta(microseconds=1), box.profile).outputs == ()
    executed = advance(accepted, WHEN, box.profile)
    (alert,) = executed.outputs
    assert alert.kind is OutputKind.ALERT and alert.recipient == TCOS_PARTY
    assert alert.originator_counter == box.meter.alert_counter
    content = _alert(alert.message)
    assert content.alert_code is AlertCode.FUTURE_DATED_COMMAND_ACTIONED
    assert content.execution_date_time == WHEN
    assert content.execution_outcome.authorising_remote_party_seq_number == 100
    assert executed.state.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_B  # type: ignore[union-attr]
    assert executed.state.alert_counter == box.meter.alert_counter + 1
    assert executed.state.pending is None


def test_a_due_command_executes_before_the_next_message_is_handled() -> None:
    box = sandbox()
    accepted = handle(box.meter, box.command(execution=WHEN), NOW, box.profile).state
    transition = handle(accepted, box.command(seq=101), WHEN + timedelta(hours=1), box.profile)
    kinds = [o.kind for o in transition.outputs]
    assert kinds == [OutputKind.ALERT, OutputKind.RESPONSE]


def test_a_future_dated_command_with_a_bad_certificate_alerts_8f67() -> None:
    box = sandbox()
    bad = (TrustAnchorReplacement(box.der("supplier-b-ka"), SUPPLIER_DS_CELL),)
    accepted = handle(box.meter, box.command(bad, execution=WHEN), NOW, box.profile)
    assert decode_payload(decode_frame(accepted.outputs[0].message)) == (
        UpdateSecurityCredentialsResponse(None)
    )
    (alert,) = advance(accepted.state, WHEN, box.profile).outputs
    content = _alert(alert.message)
    assert content.alert_code is AlertCode.FUTURE_DATED_COMMAND_NOT_ACTIONED
    (outcome,) = content.execution_outcome.replacement_outcomes
    assert outcome.status_code is StatusCode.BAD_CERTIFICATE


def test_cancellation_cancels_only_a_pending_command_of_its_own_message_code() -> None:
    box = sandbox()
    pending = handle(box.meter, box.command(execution=WHEN), NOW, box.profile).state
    # A 0x0106 cancellation does not touch the pending 0x0107 ...
    migration_cancel = box.command(
        (TrustAnchorReplacement(box.der("ecos-ds"), TRANSITIONAL_COS_CELL),),
        mode=MODE_6,
        seq=101,
        floors=None,
        execution=CANCELLATION_DATE_TIME,
    )
    kept = handle(pending, migration_cancel, NOW, box.profile)
    assert kept.rejection is None and kept.state.pending == pending.pending
    # ... a 0x0107 cancellation does.
    cancelled = handle(
        kept.state, box.command(seq=102, execution=CANCELLATION_DATE_TIME), NOW, box.profile
    )
    assert cancelled.state.pending is None
    assert advance(cancelled.state, WHEN, box.profile).outputs == ()


def test_a_new_future_dated_command_replaces_the_one_held() -> None:
    box = sandbox()
    first = handle(box.meter, box.command(seq=100, execution=WHEN), NOW, box.profile).state
    later = WHEN + timedelta(days=1)
    second = handle(first, box.command(seq=101, execution=later), NOW, box.profile).state
    assert second.pending is not None and second.pending.seq_number == 101
    assert advance(second, WHEN, box.profile).outputs == ()
    assert len(advance(second, later, box.profile).outputs) == 1


def test_migration_installs_the_ecos_anchor_and_ecos_then_authorises() -> None:
    box = sandbox()
    migrated = handle(box.meter, _migration(box, seq=100, new_floor=0), NOW, box.profile)
    assert migrated.rejection is None
    assert migrated.state.cell(TRANSITIONAL_COS_CELL).subject_unique_id == ECOS_PARTY  # type: ignore[union-attr]
    # [4] set the new transitionalCoS party's floor, so ECoS may start its seq numbers at 1.
    assert migrated.state.seq_number(RemotePartyRole.TRANSITIONAL_COS) == 0
    by_tcos = handle(migrated.state, box.command(seq=200), NOW, box.profile)
    assert by_tcos.rejection is not None
    assert by_tcos.rejection.reason is RejectionReason.SIGNATURE_INVALID
    by_ecos = handle(
        migrated.state,
        box.command(seq=1, signer="ecos-ds", originator=ECOS_PARTY),
        NOW,
        box.profile,
    )
    assert by_ecos.rejection is None
    assert by_ecos.outputs[0].recipient == ECOS_PARTY


def test_without_a_new_floor_the_migration_seq_number_stays_the_threshold() -> None:
    box = sandbox()
    migrated = handle(box.meter, _migration(box, seq=6000), NOW, box.profile).state
    assert migrated.seq_number(RemotePartyRole.TRANSITIONAL_COS) == 6000
    low = handle(
        migrated, box.command(seq=1, signer="ecos-ds", originator=ECOS_PARTY), NOW, box.profile
    )
    assert low.rejection is not None
    assert low.rejection.reason is RejectionReason.SEQ_NUMBER_NOT_GREATER


def test_a_pending_0107_survives_a_later_migration_and_still_executes() -> None:
    box = sandbox()
    pending = handle(box.meter, box.command(seq=100, execution=WHEN), NOW, box.profile).state
    migrated = handle(pending, _migration(box, seq=101), NOW, box.profile)
    assert migrated.rejection is None
    assert migrated.state.pending == pending.pending
    (alert,) = advance(migrated.state, WHEN, box.profile).outputs
    assert alert.recipient == TCOS_PARTY
    assert _alert(alert.message).alert_code is AlertCode.FUTURE_DATED_COMMAND_ACTIONED


def _credentials_read(box: Sandbox, counter: int = 0x516) -> bytes:
    return build_command(
        originator=ACCESS_CONTROL_BROKER,
        recipient=DEVICE,
        originator_counter=counter,
        message_code=MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS,
        content=ProvideSecurityCredentialDetailsCommand(
            ACB_KA_CELL, (RemotePartyRole.TRANSITIONAL_COS, RemotePartyRole.WAN_PROVIDER)
        ),
        signer=None,
        key_agreement=box.key("acb-ka"),
        recipient_key_agreement_key=box.profile.keys.public_key(DEVICE, KeyUsage.KEY_AGREEMENT),  # type: ignore[attr-defined]
    )


def test_a_credentials_read_reports_the_transitional_cos_cell_before_and_after_migration() -> None:
    box = sandbox()
    migrated = handle(box.meter, _migration(box, seq=100), NOW, box.profile).state
    for state, expected in ((box.meter, TCOS_PARTY), (migrated, ECOS_PARTY)):
        (output,) = handle(state, _credentials_read(box), NOW, box.profile).outputs
        frame = decode_frame(output.message)
        # The response is MACed with the same pair of keys (RTDS 6.24.1).
        verify_mac_with(
            frame,
            box.key("acb-ka"),
            box.profile.keys.public_key(DEVICE, KeyUsage.KEY_AGREEMENT),  # type: ignore[attr-defined]
        )
        response = decode_payload(frame)
        assert isinstance(response, ProvideSecurityCredentialDetailsResponse)
        tcos, wan = response.remote_party_details
        assert tcos.status_code is StatusCode.SUCCESS
        assert tcos.trust_anchor_cell_details is not None
        assert [c.subject_unique_id for c in tcos.trust_anchor_cell_details] == [expected]
        assert wan.status_code is StatusCode.TRUST_ANCHOR_NOT_FOUND


def test_a_credentials_read_with_a_bad_mac_is_rejected() -> None:
    box = sandbox()
    command = bytearray(_credentials_read(box))
    command[-3] ^= 0x40
    transition = handle(box.meter, bytes(command), NOW, box.profile)
    assert transition.rejection is not None
    assert transition.rejection.reason is RejectionReason.MAC_INVALID


def test_reboot_loses_the_pending_command() -> None:
    box = sandbox()
    pending = handle(box.meter, box.command(execution=WHEN), NOW, box.profile).state
    rebooted = reboot(pending, NOW, box.profile).state
    assert phase_of(rebooted) is Phase.IDLE
    assert advance(rebooted, WHEN, box.profile).outputs == ()
    assert rebooted.cells == box.meter.cells
    # The seq number it consumed stays consumed.
    assert rebooted.seq_number(RemotePartyRole.TRANSITIONAL_COS) == 100


def test_a_busy_meter_answers_resources_busy_and_changes_nothing() -> None:
    box = sandbox()
    transition = handle(box.meter, box.command(), NOW, box.profile, busy=True)
    assert transition.state is box.meter
    response = decode_payload(decode_frame(transition.outputs[0].message))
    assert isinstance(response, UpdateSecurityCredentialsResponse)
    assert response.execution_outcome is not None
    outcomes = response.execution_outcome.replacement_outcomes
    assert {o.status_code for o in outcomes} == {StatusCode.RESOURCES_BUSY}
    assert {o.replacing_subject_unique_id for o in outcomes} == {SUPPLIER_A}
    # The same command goes through once the meter is no longer busy.
    assert handle(box.meter, box.command(), NOW, box.profile).rejection is None


def test_a_broken_meter_does_nothing() -> None:
    box = sandbox()
    transition = broken(box.meter)
    assert transition.outputs == () and transition.state is box.meter
    assert transition.rejection is not None
    assert transition.rejection.reason is RejectionReason.BROKEN


def test_supplier_ka_cell_is_unchanged_by_a_ds_only_command() -> None:
    box = sandbox()
    ds_only = (box.supplier_b()[0],)
    state = handle(box.meter, box.command(ds_only), NOW, box.profile).state
    assert state.cell(SUPPLIER_KA_CELL) is box.meter.cell(SUPPLIER_KA_CELL)
    assert state.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_B  # type: ignore[union-attr]
