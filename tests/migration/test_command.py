"""The 0x0106 migration command: RTDS byte equality, and acceptance by the simulated meter."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.device import (
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    DeviceKey,
    RejectionReason,
    handle,
)
from openecos.gbcs import (
    AuthorisingRemotePartyControl,
    RemotePartySeqNumberChange,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
    build_command,
    decode_frame,
    decode_payload,
    encode_content,
    verify_mac_with,
    verify_signature,
)
from openecos.gbcs.codes import CredentialsReplacementMode, RemotePartyRole
from openecos.migration import (
    AnchorIdentity,
    EcosCredential,
    InvalidMigrationInput,
    MigrationCommandConfig,
    MigrationCommandTemplate,
    SentMigration,
    build_migration_command,
    build_trans_cos_by_trans_cos,
    classify_outcome,
    classify_response,
)
from openecos.smki import SmkiCertificate
from openecos.smki.sandbox import ECOS_PARTY, TCOS_PARTY
from tests.device.rtds import DEVICE as RTDS_DEVICE
from tests.device.rtds import RTDS_NOW, rtds_meter, rtds_profile, zaz1_private_key
from tests.device.rtds import TCOS as RTDS_TCOS_EUI
from tests.migration.helpers import (
    DEVICE,
    NOW,
    der,
    ecos_credential,
    identity,
    key,
    meter,
    pki,
    sent,
)
from tests.reference import RTDS_TCOS, device_certificate_pem, rtds_hex, zaz1_entry

RTDS_COMMAND = "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX"
SUPPLIER_B = ("supplier-b-ds", "supplier-b-ka", "supplier-b-ka-topup")


def _rtds_vector() -> tuple[bytes, UpdateSecurityCredentialsCommand]:
    raw = rtds_hex(RTDS_TCOS, RTDS_COMMAND)
    content = decode_payload(decode_frame(raw))
    assert isinstance(content, UpdateSecurityCredentialsCommand)
    return raw, content


def _rtds_credential(content: UpdateSecurityCredentialsCommand) -> EcosCredential:
    # The certificates as the RTDS vector carries them: Z1b (the new anchor) and the Z1 CA.
    return EcosCredential.from_der(
        content.replacements[0].replacement_certificate, content.certification_path
    )


RTDS_CONFIG = MigrationCommandConfig(
    apply_time_based_cpv_checks=False, set_new_remote_party_floor=False
)


def test_content_for_the_rtds_meter_state_is_the_rtds_content_byte_for_byte() -> None:
    raw, vector = _rtds_vector()
    frame = decode_frame(raw)
    built = build_trans_cos_by_trans_cos(
        _rtds_credential(vector), originator_counter=6000, ecos_counter_floor=0, config=RTDS_CONFIG
    )
    assert built == vector
    assert encode_content(built) == raw[frame.content_start : frame.content_end]


def test_rtds_command_reproduced_up_to_the_signature_and_its_signature_and_mac_verify() -> None:
    raw, vector = _rtds_vector()
    acb_ka = DeviceKey(zaz1_private_key("Z1-accessControlBroker-ka"))
    device_ka = _rtds_device_ka()
    built = build_migration_command(
        _rtds_credential(vector),
        tcos=RTDS_TCOS_EUI,
        device=RTDS_DEVICE,
        originator_counter=6000,
        ecos_counter_floor=0,
        signer=DeviceKey(zaz1_private_key("Z1-transitionalCoS-ds")),
        acb_key_agreement=acb_ka,
        device_key_agreement_key=device_ka,
        config=RTDS_CONFIG,
    )
    expected = decode_frame(raw)
    produced = decode_frame(built)
    # Everything up to the signature (DD header, lengths, GS header, content) is identical;
    # ECDSA is randomised, so the signature and the MAC over it cannot be (§3.1).
    signature_at = expected.signed_range[1]
    assert len(built) == len(raw)
    assert built[:signature_at] == raw[:signature_at]
    tcos_cert = SmkiCertificate.from_pem(zaz1_entry("Z1-transitionalCoS-ds")["certificate"])
    verify_signature(produced, tcos_cert.public_key)
    verify_mac_with(produced, acb_ka, device_ka)


def test_default_command_carries_floor_and_omits_disapply() -> None:
    content = build_trans_cos_by_trans_cos(
        ecos_credential(), originator_counter=6000, ecos_counter_floor=41
    )
    control = content.authorising_remote_party_control
    assert control.credentials_replacement_mode is CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS
    assert control.authorising_remote_party_seq_number == 6000
    assert control.new_remote_party_floor_seq_number == 41
    assert control.apply_time_based_cpv_checks is True
    assert control.other_remote_party_seq_number_changes is None
    assert content.replacements == (TrustAnchorReplacement(der("ecos-ds"), TRANSITIONAL_COS_CELL),)


@pytest.mark.parametrize("counter", [0, -1, 1 << 64, True])
def test_counter_out_of_range_is_refused(counter: int) -> None:
    with pytest.raises(InvalidMigrationInput):
        build_trans_cos_by_trans_cos(
            ecos_credential(), originator_counter=counter, ecos_counter_floor=0
        )


@pytest.mark.parametrize("name", ["supplier-a-ds", "tcos-ds-not-there"])
def test_ecos_credential_must_be_a_role5_signing_certificate(name: str) -> None:
    data = der(name) if name != "tcos-ds-not-there" else b"\x30\x03\x02\x01\x00"
    with pytest.raises(InvalidMigrationInput):
        EcosCredential.from_der(data, ())


def _ecos_supplier_change(seq: int) -> bytes:
    """A 0x0107 signed by the ECoS Party, as it serves a migrated meter."""
    cells = (SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, SUPPLIER_KA_TOP_UP_CELL)
    content = UpdateSecurityCredentialsCommand(
        AuthorisingRemotePartyControl(
            credentials_replacement_mode=CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS,
            authorising_remote_party_seq_number=seq,
            authorising_remote_party_ta_cell=TRANSITIONAL_COS_CELL,
            other_remote_party_seq_number_changes=(
                RemotePartySeqNumberChange(RemotePartyRole.SUPPLIER, 0),
            ),
        ),
        tuple(TrustAnchorReplacement(der(n), c) for n, c in zip(SUPPLIER_B, cells, strict=True)),
        tuple(c.der for c in pki().organisation_path),
    )
    the_meter = meter()
    return build_command(
        originator=ECOS_PARTY,
        recipient=DEVICE,
        originator_counter=seq,
        message_code=CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS.message_code,
        content=content,
        signer=key("ecos-ds"),
        key_agreement=key("acb-ka"),
        recipient_key_agreement_key=the_meter.device_ka(),
    )


def test_default_command_is_accepted_and_then_the_ecos_party_is_obeyed() -> None:
    m = meter()
    response = m.send(m.migration_command(counter=6000, floor=41))
    assert response is not None
    verdict = classify_response(response, sent=sent(6000), device_signing_key=m.device_ds())
    assert verdict.migrated, verdict
    assert m.state.cell(TRANSITIONAL_COS_CELL).der == der("ecos-ds")  # type: ignore[union-attr]
    # The floor [4] now governs the transitionalCoS seq number: the ECoS Party's counters
    # above it are accepted, far below the TCoS counter 6000 that authorised the migration.
    result = handle(m.state, _ecos_supplier_change(42), NOW, m.profile)
    assert result.rejection is None
    assert result.outputs


def test_ecos_command_from_before_the_migration_cannot_be_replayed() -> None:
    m = meter()
    m.send(m.migration_command(counter=6000, floor=41))
    result = handle(m.state, _ecos_supplier_change(41), NOW, m.profile)
    assert result.rejection is not None
    assert result.rejection.reason is RejectionReason.SEQ_NUMBER_NOT_GREATER


def test_without_floor_the_ecos_party_is_refused_below_the_tcos_counter() -> None:
    # Why [4] is set by default: RTDS's form leaves the seq number at the 0x0106's [3].
    m = meter()
    config = MigrationCommandConfig(set_new_remote_party_floor=False)
    response = m.send(m.migration_command(counter=6000, config=config))
    assert response is not None
    assert classify_response(response, sent=sent(6000), device_signing_key=m.device_ds()).migrated
    result = handle(m.state, _ecos_supplier_change(42), NOW, m.profile)
    assert result.rejection is not None
    assert result.rejection.reason is RejectionReason.SEQ_NUMBER_NOT_GREATER


def test_migrated_meter_refuses_a_second_tcos_signed_0x0106() -> None:
    m = meter()
    m.send(m.migration_command(counter=6000))
    result = handle(m.state, m.migration_command(counter=6001), NOW, m.profile)
    assert result.rejection is not None
    assert result.rejection.reason is RejectionReason.SIGNATURE_INVALID


def test_identity_is_subject_eui_and_ski() -> None:
    ident = identity("ecos-ds")
    assert ident.subject_unique_id == ECOS_PARTY
    assert ident.subject_unique_id != TCOS_PARTY
    assert len(ident.subject_key_id) == 8


def test_rtds_form_command_is_accepted_by_a_meter_in_the_rtds_state() -> None:
    _, vector = _rtds_vector()
    profile, _ = rtds_profile()
    rtds_meter_state = rtds_meter(profile)
    built = build_migration_command(
        _rtds_credential(vector),
        tcos=RTDS_TCOS_EUI,
        device=RTDS_DEVICE,
        originator_counter=6000,
        ecos_counter_floor=0,
        signer=DeviceKey(zaz1_private_key("Z1-transitionalCoS-ds")),
        acb_key_agreement=DeviceKey(zaz1_private_key("Z1-accessControlBroker-ka")),
        device_key_agreement_key=_rtds_device_ka(),
        config=MigrationCommandConfig(apply_time_based_cpv_checks=False),
    )
    result = handle(rtds_meter_state, built, RTDS_NOW, profile)
    assert result.rejection is None
    outcome = decode_payload(decode_frame(result.outputs[0].message))
    assert isinstance(outcome, UpdateSecurityCredentialsResponse)
    assert outcome.execution_outcome is not None
    z1b = AnchorIdentity.of(
        SmkiCertificate.from_der(vector.replacements[0].replacement_certificate)
    )
    expected = SentMigration(RTDS_DEVICE, RTDS_TCOS_EUI, 6000, z1b)
    assert classify_outcome(outcome.execution_outcome, expected).migrated


def _rtds_device_ka() -> ec.EllipticCurvePublicKey:
    key = x509.load_pem_x509_certificate(device_certificate_pem("ka")).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


class _DigestTwice:
    """A deterministic stand-in signer, so two builds can be compared byte for byte."""

    def sign_digest(self, digest: bytes) -> bytes:
        return digest[::-1] + digest


@pytest.mark.parametrize(
    ("counter", "floor"),
    [(1, 0), (6000, 41), (0x80, 0x7F), ((1 << 63) + 7, (1 << 64) - 1), ((1 << 64) - 1, 0)],
)
@pytest.mark.parametrize(
    "config",
    [
        MigrationCommandConfig(),
        MigrationCommandConfig(apply_time_based_cpv_checks=False),
        MigrationCommandConfig(set_new_remote_party_floor=False),
    ],
)
def test_template_makes_the_builders_bytes(
    counter: int, floor: int, config: MigrationCommandConfig
) -> None:
    m = meter()
    template = MigrationCommandTemplate(ecos_credential(), tcos=TCOS_PARTY, config=config)
    arguments = {
        "device": DEVICE,
        "originator_counter": counter,
        "ecos_counter_floor": floor,
        "signer": _DigestTwice(),
        "acb_key_agreement": key("acb-ka"),
        "device_key_agreement_key": m.device_ka(),
    }
    made = template.build(**arguments)  # type: ignore[arg-type]
    assert made == build_migration_command(
        ecos_credential(),
        tcos=TCOS_PARTY,
        config=config,
        **arguments,  # type: ignore[arg-type]
    )
    content = build_trans_cos_by_trans_cos(
        ecos_credential(), originator_counter=counter, ecos_counter_floor=floor, config=config
    )
    assert template.content(counter, floor) == encode_content(content)


def test_template_command_is_accepted_by_the_meter_and_answered() -> None:
    m = meter()
    template = MigrationCommandTemplate(ecos_credential(), tcos=TCOS_PARTY)
    command = template.build(
        device=DEVICE,
        originator_counter=6000,
        ecos_counter_floor=41,
        signer=key("tcos-ds"),
        acb_key_agreement=key("acb-ka"),
        device_key_agreement_key=m.device_ka(),
    )
    response = m.send(command)
    assert response is not None
    verdict = classify_response(response, sent=sent(6000), device_signing_key=m.device_ds())
    assert verdict.migrated, verdict


@pytest.mark.parametrize("counter", [0, -1, 1 << 64])
def test_template_refuses_a_counter_out_of_range(counter: int) -> None:
    template = MigrationCommandTemplate(ecos_credential(), tcos=TCOS_PARTY)
    with pytest.raises(InvalidMigrationInput):
        template.content(counter, 0)
