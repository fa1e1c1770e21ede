"""One test per meter rule (docs/gbcs-cs02b.md §8.4 [G]), on a meter commissioned in the sandbox.

A command that fails authentication is discarded: a typed rejection, no
output, the state unchanged. A command that is authentic but carries a bad
certificate gets the per-cell status and leaves that cell unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openecos.device import (
    ACB_KA_CELL,
    RECOVERY_CELL,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    TRANSITIONAL_COS_CELL,
    MeterOutput,
    OutputKind,
    RejectionReason,
    Transition,
    handle,
    sandbox_device_certificates,
)
from openecos.eui import Eui64
from openecos.gbcs import (
    ExecutionOutcome,
    RemotePartySeqNumberChange,
    SpecialistSeqNumber,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsResponse,
    decode_frame,
    decode_payload,
    verify_signature,
)
from openecos.gbcs.codes import (
    CredentialsReplacementMode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    SeqNumberUsage,
    StatusCode,
)
from openecos.smki import (
    LeafExpectation,
    ValidationTime,
    create_test_pki,
    validate_path,
)
from openecos.smki.sandbox import ACCESS_CONTROL_BROKER, SUPPLIER_A, SUPPLIER_B, TCOS_PARTY
from tests.device.sandbox import (
    DEVICE,
    MODE_6,
    NOW,
    OTHER_DEVICE,
    SUPPLIER_CELLS,
    Sandbox,
    sandbox,
)


def _outcome(output: MeterOutput) -> ExecutionOutcome:
    response = decode_payload(decode_frame(output.message))
    assert isinstance(response, UpdateSecurityCredentialsResponse)
    assert response.execution_outcome is not None
    return response.execution_outcome


def _rejected(transition: Transition, reason: RejectionReason) -> None:
    assert transition.rejection is not None
    assert transition.rejection.reason is reason, transition.rejection
    assert transition.outputs == ()


def _supplier_euis(transition: Transition) -> set[Eui64]:
    return {transition.state.cell(c).subject_unique_id for c in SUPPLIER_CELLS}  # type: ignore[union-attr]


# -- success ----------------------------------------------------------------------------------


def test_a_0107_built_with_build_command_installs_supplier_b() -> None:
    box = sandbox()
    transition = handle(box.meter, box.command(seq=100), NOW, box.profile)
    assert transition.rejection is None
    (output,) = transition.outputs
    assert output.kind is OutputKind.RESPONSE and output.recipient == TCOS_PARTY
    outcome = _outcome(output)
    assert [o.status_code for o in outcome.replacement_outcomes] == [StatusCode.SUCCESS] * 3
    assert {o.existing_subject_unique_id for o in outcome.replacement_outcomes} == {SUPPLIER_A}
    assert {o.replacing_subject_unique_id for o in outcome.replacement_outcomes} == {SUPPLIER_B}
    assert _supplier_euis(transition) == {SUPPLIER_B}
    assert transition.state.seq_number(RemotePartyRole.TRANSITIONAL_COS) == 100


def test_the_response_is_signed_by_the_device_key_its_certificate_names() -> None:
    box = sandbox()
    (output,) = handle(box.meter, box.command(), NOW, box.profile).outputs
    certificates = sandbox_device_certificates(box.pki, DEVICE, box.profile.keys)  # type: ignore[arg-type]
    validate_path(
        certificates.digital_signature,
        anchors=box.pki.anchors,
        time=ValidationTime.at(NOW),
        policies=box.pki.policies,
        path=box.pki.device_path,
        expect=LeafExpectation(key_usage=KeyUsage.DIGITAL_SIGNATURE, device=DEVICE),
    )
    frame = decode_frame(output.message)
    verify_signature(frame, certificates.digital_signature.public_key)
    # The meters' length quirk: 128-255 is written 82 00 LL (docs/gbcs-cs02b.md §4).
    assert frame.apdu.content.startswith(b"\x30\x82\x00")


def test_floors_in_6_set_the_supplier_and_top_up_seq_numbers() -> None:
    box = sandbox()
    floors = (
        RemotePartySeqNumberChange(
            RemotePartyRole.SUPPLIER,
            500,
            (SpecialistSeqNumber(SeqNumberUsage.PREPAYMENT_TOP_UP, 700),),
        ),
    )
    transition = handle(box.meter, box.command(floors=floors), NOW, box.profile)
    assert transition.state.seq_number(RemotePartyRole.SUPPLIER) == 500
    assert transition.state.top_up_seq_number == 700
    assert _outcome(transition.outputs[0]).remote_party_seq_number_changes == floors


# -- authentication failures: discarded, nothing changes --------------------------------------


def test_a_wrong_mac_is_rejected() -> None:
    box = sandbox()
    command = bytearray(box.command())
    command[-1] ^= 0x01
    transition = handle(box.meter, bytes(command), NOW, box.profile)
    _rejected(transition, RejectionReason.MAC_INVALID)
    assert transition.state is box.meter


def test_a_mac_from_a_key_other_than_the_acb_anchor_is_rejected() -> None:
    box = sandbox()
    transition = handle(box.meter, box.command(mac_key="network-operator-ka"), NOW, box.profile)
    _rejected(transition, RejectionReason.MAC_INVALID)


def test_a_command_without_mac_is_rejected() -> None:
    box = sandbox()
    transition = handle(box.meter, box.command(mac_key=None), NOW, box.profile)
    _rejected(transition, RejectionReason.MAC_MISSING)


def test_a_command_signed_by_another_party_is_rejected() -> None:
    box = sandbox()
    for signer in ("supplier-b-ds", "ecos-ds", "acb-ds"):
        transition = handle(box.meter, box.command(signer=signer), NOW, box.profile)
        _rejected(transition, RejectionReason.SIGNATURE_INVALID)
        assert transition.state is box.meter


def test_an_unsigned_0107_is_rejected() -> None:
    box = sandbox()
    transition = handle(box.meter, box.command(signer=None), NOW, box.profile)
    _rejected(transition, RejectionReason.SIGNATURE_INVALID)


def test_an_authorising_cell_other_than_transitional_cos_is_rejected() -> None:
    box = sandbox()
    command = box.command(authorising_cell=SUPPLIER_DS_CELL, signer="supplier-a-ds")
    _rejected(
        handle(box.meter, command, NOW, box.profile), RejectionReason.AUTHORISING_CELL_NOT_PERMITTED
    )


def test_a_message_code_that_does_not_match_the_mode_is_rejected() -> None:
    box = sandbox()
    command = box.command(message_code=MessageCode.CS02B_TRANS_COS_BY_TRANS_COS)
    _rejected(handle(box.meter, command, NOW, box.profile), RejectionReason.MESSAGE_CODE_MISMATCH)


def test_a_replayed_or_equal_seq_number_is_rejected() -> None:
    box = sandbox()
    first = handle(box.meter, box.command(seq=100), NOW, box.profile)
    replay = handle(first.state, box.command(seq=100), NOW, box.profile)
    _rejected(replay, RejectionReason.SEQ_NUMBER_NOT_GREATER)
    assert replay.state is first.state
    older = handle(first.state, box.command(seq=99), NOW, box.profile)
    _rejected(older, RejectionReason.SEQ_NUMBER_NOT_GREATER)
    assert handle(first.state, box.command(seq=101), NOW, box.profile).rejection is None


def test_a_command_for_another_meter_is_rejected() -> None:
    box = sandbox()
    command = box.command(recipient=OTHER_DEVICE)
    _rejected(handle(box.meter, command, NOW, box.profile), RejectionReason.WRONG_RECIPIENT)


def test_a_response_or_alert_sent_to_the_meter_is_rejected() -> None:
    box = sandbox()
    (response,) = handle(box.meter, box.command(), NOW, box.profile).outputs
    _rejected(handle(box.meter, response.message, NOW, box.profile), RejectionReason.NOT_A_COMMAND)


@pytest.mark.parametrize(
    ("mode", "target", "signer"),
    [
        (CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS, TRANSITIONAL_COS_CELL, "ecos-ds"),
        (MODE_6, SUPPLIER_DS_CELL, "supplier-b-ds"),
    ],
)
def test_a_target_cell_the_mode_does_not_permit_is_rejected(
    mode: CredentialsReplacementMode, target: object, signer: str
) -> None:
    box = sandbox()
    replacement = TrustAnchorReplacement(box.der(signer), target)  # type: ignore[arg-type]
    command = box.command((replacement,), mode=mode, floors=None)
    transition = handle(box.meter, command, NOW, box.profile)
    _rejected(transition, RejectionReason.TARGET_NOT_PERMITTED)
    assert transition.state is box.meter


def test_two_replacements_for_one_cell_are_rejected() -> None:
    box = sandbox()
    ds = TrustAnchorReplacement(box.der("supplier-b-ds"), SUPPLIER_DS_CELL)
    transition = handle(box.meter, box.command((ds, ds)), NOW, box.profile)
    _rejected(transition, RejectionReason.DUPLICATE_TARGET)


# -- certificate checks: per-cell status, that cell unchanged ---------------------------------


def _single(box: object, replacement: TrustAnchorReplacement, **kw: object) -> Transition:
    command = box.command((replacement,), **kw)  # type: ignore[attr-defined]
    transition = handle(box.meter, command, NOW, box.profile)  # type: ignore[attr-defined]
    assert transition.rejection is None
    return transition


def test_a_certificate_from_a_foreign_pki_gets_no_trust_anchor() -> None:
    box = sandbox()
    foreign = create_test_pki().issue_organisation(
        "foreign",
        eui=SUPPLIER_B,
        role=RemotePartyRole.SUPPLIER,
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
    )
    replacement = TrustAnchorReplacement(foreign.certificate.der, SUPPLIER_DS_CELL)
    transition = _single(box, replacement)
    (outcome,) = _outcome(transition.outputs[0]).replacement_outcomes
    assert outcome.status_code is StatusCode.NO_TRUST_ANCHOR
    assert outcome.replacing_subject_unique_id == outcome.existing_subject_unique_id == SUPPLIER_A
    assert transition.state.cells == box.meter.cells
    # No cell replaced: the floors are neither applied nor reported.
    assert _outcome(transition.outputs[0]).remote_party_seq_number_changes == ()


def test_an_expired_certificate_is_refused_with_time_checks_and_taken_without() -> None:
    box = sandbox()
    expired = box.pki.issue_organisation(
        "expired",
        eui=SUPPLIER_B,
        role=RemotePartyRole.SUPPLIER,
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=datetime(2015, 1, 1, tzinfo=UTC),
        not_after=datetime(2025, 1, 1, tzinfo=UTC),
    )
    replacement = TrustAnchorReplacement(expired.certificate.der, SUPPLIER_DS_CELL)
    checked = _single(box, replacement)
    (outcome,) = _outcome(checked.outputs[0]).replacement_outcomes
    assert outcome.status_code is StatusCode.BAD_CERTIFICATE
    assert checked.state.cells == box.meter.cells
    disapplied = _single(box, replacement, apply_time_checks=False)
    (outcome,) = _outcome(disapplied.outputs[0]).replacement_outcomes
    assert outcome.status_code is StatusCode.SUCCESS
    assert disapplied.state.cell(SUPPLIER_DS_CELL).der == expired.certificate.der  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("entry", "cell"),
    [
        ("supplier-b-ka", SUPPLIER_DS_CELL),  # wrong key usage
        ("supplier-b-ds", SUPPLIER_KA_CELL),
        ("network-operator-ds", SUPPLIER_DS_CELL),  # wrong role
        ("supplier-b-xml-sign", SUPPLIER_DS_CELL),
    ],
)
def test_a_certificate_with_the_wrong_role_or_usage_for_its_cell_is_bad(
    entry: str, cell: object
) -> None:
    box = sandbox()
    transition = _single(box, TrustAnchorReplacement(box.der(entry), cell))  # type: ignore[arg-type]
    (outcome,) = _outcome(transition.outputs[0]).replacement_outcomes
    assert outcome.status_code is StatusCode.BAD_CERTIFICATE
    assert transition.state.cells == box.meter.cells


def test_unreadable_certificate_bytes_are_bad() -> None:
    box = sandbox()
    transition = _single(box, TrustAnchorReplacement(b"\x30\x03\x02\x01\x00", SUPPLIER_DS_CELL))
    (outcome,) = _outcome(transition.outputs[0]).replacement_outcomes
    assert outcome.status_code is StatusCode.BAD_CERTIFICATE


def test_a_missing_certification_path_gets_no_trust_anchor() -> None:
    box = sandbox()
    transition = _single(box, box.supplier_b()[0], path=())
    (outcome,) = _outcome(transition.outputs[0]).replacement_outcomes
    assert outcome.status_code is StatusCode.NO_TRUST_ANCHOR


def test_one_bad_certificate_fails_only_its_own_cell() -> None:
    box = sandbox()
    good_ds, _, good_top_up = box.supplier_b()
    bad_ka = TrustAnchorReplacement(box.der("supplier-b-ds"), SUPPLIER_KA_CELL)
    transition = handle(box.meter, box.command((good_ds, bad_ka, good_top_up)), NOW, box.profile)
    statuses = [o.status_code for o in _outcome(transition.outputs[0]).replacement_outcomes]
    assert statuses == [StatusCode.SUCCESS, StatusCode.BAD_CERTIFICATE, StatusCode.SUCCESS]
    assert transition.state.cell(SUPPLIER_KA_CELL) is box.meter.cell(SUPPLIER_KA_CELL)
    assert transition.state.cell(SUPPLIER_DS_CELL).subject_unique_id == SUPPLIER_B  # type: ignore[union-attr]


def test_certificates_are_shared_between_meters() -> None:
    box = sandbox()
    a = handle(box.meter, box.command(seq=100), NOW, box.profile).state
    other = box.meter  # a second meter given the same command
    b = handle(other, box.command(seq=100), NOW, box.profile).state
    assert a.cell(SUPPLIER_DS_CELL) is b.cell(SUPPLIER_DS_CELL)
    assert a.cells is b.cells


def test_time_runs_only_forward_for_future_dated_commands() -> None:
    box = sandbox()
    when = NOW + timedelta(days=2)
    accepted = handle(box.meter, box.command(execution=when), NOW, box.profile)
    response = decode_payload(decode_frame(accepted.outputs[0].message))
    assert response == UpdateSecurityCredentialsResponse(None)
    assert accepted.state.pending is not None
    assert accepted.state.cells == box.meter.cells


def test_acb_by_acb_is_authenticated_by_the_mac_alone_and_rekeys_the_mac() -> None:
    box = sandbox()
    new_ka = box.pki.issue_organisation(
        "acb-ka-2",
        eui=ACCESS_CONTROL_BROKER,
        role=RemotePartyRole.ACCESS_CONTROL_BROKER,
        key_usage=KeyUsage.KEY_AGREEMENT,
    )
    command = box.command(
        (TrustAnchorReplacement(new_ka.certificate.der, ACB_KA_CELL),),
        mode=CredentialsReplacementMode.ACCESS_CONTROL_BROKER_BY_ACB,
        authorising_cell=None,
        signer=None,
        originator=ACCESS_CONTROL_BROKER,
        floors=None,
    )
    transition = handle(box.meter, command, NOW, box.profile)
    assert transition.rejection is None
    assert transition.state.cell(ACB_KA_CELL).der == new_ka.certificate.der  # type: ignore[union-attr]
    # The old ACB KA key no longer MACs commands for this meter; the new one does.
    old = handle(transition.state, box.command(seq=101), NOW, box.profile)
    _rejected(old, RejectionReason.MAC_INVALID)
    rekeyed = Sandbox(box.pki.with_entries(new_ka), box.profile, transition.state)
    assert (
        handle(
            transition.state, rekeyed.command(seq=101, mac_key="acb-ka-2"), NOW, box.profile
        ).rejection
        is None
    )


def test_a_recovery_command_needs_a_recovery_anchor() -> None:
    box = sandbox()  # the sandbox meter's recovery cell is empty

    command = box.command(
        mode=CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY,
        authorising_cell=RECOVERY_CELL,
        mac_key=None,
    )
    _rejected(handle(box.meter, command, NOW, box.profile), RejectionReason.NO_TRUST_ANCHOR)
