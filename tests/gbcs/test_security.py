"""Signatures and MACs over the RTDS vectors, negative controls, and freshly built commands."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs import (
    RTDS_RESPONSE_DATE_TIME,
    CraFlag,
    CredentialsReplacementMode,
    EncodeError,
    ExecutionOutcome,
    KeyUsage,
    LengthStyle,
    MacInvalid,
    MessageCode,
    RemotePartyRole,
    ReplacementOutcome,
    SignatureInvalid,
    StatusCode,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
    build_apdu,
    build_command,
    check_message_code,
    decode_frame,
    decode_payload,
    sign_apdu,
    verify_mac,
    verify_mac_with,
    verify_signature,
)
from tests.gbcs.helpers import (
    DEVICE,
    SoftwareKeyAgreement,
    SoftwareSigner,
    device_public_key,
    fresh_key,
    zaz1_private_key,
    zaz1_public_key,
)
from tests.reference import RTDS_623, RTDS_CS02A, RTDS_TCOS, rtds_files, rtds_hex

IMMEDIATE_COMMAND = "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
TCOS = Eui64.parse("90B3D51F30000004")
SIGNED = [(f, n) for f, n in rtds_files() if f != RTDS_CS02A]


def _acb() -> SoftwareKeyAgreement:
    return SoftwareKeyAgreement(zaz1_private_key("Z1-accessControlBroker-ka"))


def _maced_to_or_from_the_test_device() -> list[tuple[str, str]]:
    """MACed frames whose device is 00DB1234567890A0 (the one whose KA certificate we hold)."""
    found = []
    for folder, name in rtds_files():
        frame = decode_frame(rtds_hex(folder, name))
        if frame.ciphering is not None and DEVICE in (frame.apdu.originator, frame.apdu.recipient):
            found.append((folder, name))
    return found


@pytest.mark.parametrize(("folder", "name"), SIGNED)
def test_every_rtds_signature_verifies_with_its_originator_key(folder: str, name: str) -> None:
    frame = decode_frame(rtds_hex(folder, name))
    if frame.apdu.cra_flag is CraFlag.COMMAND:
        key = zaz1_public_key("Z1-transitionalCoS-ds")  # docs/gbcs-cs02b.md §6.2
    else:
        assert frame.apdu.originator == DEVICE
        key = device_public_key("ds")
    verify_signature(frame, key)


@pytest.mark.parametrize(("folder", "name"), _maced_to_or_from_the_test_device())
def test_every_rtds_mac_verifies_with_acb_and_device_key_agreement(folder: str, name: str) -> None:
    frame = decode_frame(rtds_hex(folder, name))
    verify_mac_with(frame, _acb(), device_public_key("ka"))


def test_all_rtds_cs02b_commands_are_maced_to_the_test_device() -> None:
    maced = set(_maced_to_or_from_the_test_device())
    commands = {(f, n) for f, n in rtds_files() if f in (RTDS_623, RTDS_TCOS) and "COMMAND" in n}
    assert commands and commands <= maced


def test_a_high_s_signature_is_accepted() -> None:
    frame = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    assert frame.apdu.signature is not None
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 n
    assert int.from_bytes(frame.apdu.signature[32:], "big") > order // 2
    verify_signature(frame, zaz1_public_key("Z1-transitionalCoS-ds"))


def test_a_flipped_byte_in_the_signed_range_fails_the_signature() -> None:
    raw = bytearray(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    frame = decode_frame(bytes(raw))
    start, end = frame.signed_range
    for offset in (start + 2, (start + end) // 2, end - 1):  # counter, a certificate, last byte
        flipped = bytearray(raw)
        flipped[offset] ^= 0x01
        with pytest.raises(SignatureInvalid):
            verify_signature(decode_frame(bytes(flipped)), zaz1_public_key("Z1-transitionalCoS-ds"))


def test_a_flipped_signature_byte_fails_the_signature() -> None:
    raw = bytearray(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    raw[decode_frame(bytes(raw)).content_end + 10] ^= 0x80
    with pytest.raises(SignatureInvalid):
        verify_signature(decode_frame(bytes(raw)), zaz1_public_key("Z1-transitionalCoS-ds"))


def test_the_wrong_key_fails_the_signature() -> None:
    frame = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    with pytest.raises(SignatureInvalid):
        verify_signature(frame, zaz1_public_key("Z1b-transitionalCoS-ds"))


def test_a_flipped_tag_byte_fails_the_mac() -> None:
    raw = bytearray(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    raw[-1] ^= 0x01
    with pytest.raises(MacInvalid):
        verify_mac_with(decode_frame(bytes(raw)), _acb(), device_public_key("ka"))


def test_a_flipped_signature_byte_fails_the_mac_too() -> None:
    raw = bytearray(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    raw[-20] ^= 0x01
    with pytest.raises(MacInvalid):
        verify_mac_with(decode_frame(bytes(raw)), _acb(), device_public_key("ka"))


def test_unsigned_and_unmaced_frames_fail_verification() -> None:
    cs02a = decode_frame(rtds_hex(RTDS_CS02A, "CS02aMAC_6.24.1_SUCCESS_COMMAND_GBCS.HEX"))
    with pytest.raises(SignatureInvalid):
        verify_signature(cs02a, zaz1_public_key("Z1-accessControlBroker-ds"))
    response = decode_frame(
        rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    )
    with pytest.raises(MacInvalid):
        verify_mac(response, bytes(32))


def test_a_key_on_another_curve_fails_the_signature() -> None:
    frame = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_COMMAND))
    with pytest.raises(SignatureInvalid):
        verify_signature(frame, ec.generate_private_key(ec.SECP384R1()).public_key())


def _command(mode: CredentialsReplacementMode, seq: int) -> UpdateSecurityCredentialsCommand:
    """A command reusing the RTDS 6.23 certificates, in the given mode."""
    template = decode_payload(decode_frame(rtds_hex(RTDS_623, IMMEDIATE_COMMAND)))
    assert isinstance(template, UpdateSecurityCredentialsCommand)
    tcos_ds = TrustAnchorCellIdentifier(
        RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE
    )
    control = replace(
        template.authorising_remote_party_control,
        credentials_replacement_mode=mode,
        authorising_remote_party_seq_number=seq,
    )
    replacements = template.replacements
    if mode is CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS:
        control = replace(
            control, apply_time_based_cpv_checks=False, other_remote_party_seq_number_changes=None
        )
        replacements = (TrustAnchorReplacement(replacements[0].replacement_certificate, tcos_ds),)
    return replace(template, authorising_remote_party_control=control, replacements=replacements)


@pytest.mark.parametrize(
    "mode",
    [
        CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS,
        CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS,
    ],
)
def test_a_command_built_with_fresh_keys_decodes_and_verifies(
    mode: CredentialsReplacementMode,
) -> None:
    signing, acb_ka, device_ka = fresh_key(), fresh_key(), fresh_key()
    command = _command(mode, 7001)
    raw = build_command(
        originator=TCOS,
        recipient=DEVICE,
        originator_counter=7001,
        message_code=mode.message_code,
        content=command,
        signer=SoftwareSigner(signing),
        key_agreement=SoftwareKeyAgreement(acb_ka),
        recipient_key_agreement_key=device_ka.public_key(),
    )
    frame = decode_frame(raw)
    assert frame.apdu.message_code is mode.message_code
    decoded = decode_payload(frame)
    assert decoded == command
    assert isinstance(decoded, UpdateSecurityCredentialsCommand)
    check_message_code(frame.apdu.message_code, decoded)
    verify_signature(frame, signing.public_key())
    # The meter's side of the key agreement derives the same MAC key.
    verify_mac_with(frame, SoftwareKeyAgreement(device_ka), acb_ka.public_key())
    with pytest.raises(SignatureInvalid):
        verify_signature(frame, fresh_key().public_key())
    with pytest.raises(MacInvalid):
        verify_mac_with(frame, SoftwareKeyAgreement(fresh_key()), acb_ka.public_key())


def test_a_command_rebuilt_from_rtds_values_matches_rtds_up_to_the_signature() -> None:
    raw = rtds_hex(RTDS_623, IMMEDIATE_COMMAND)
    frame = decode_frame(raw)
    apdu = frame.apdu
    rebuilt = build_command(
        originator=apdu.originator,
        recipient=apdu.recipient,
        originator_counter=apdu.originator_counter,
        message_code=apdu.message_code,
        content=decode_payload(frame),
        signer=SoftwareSigner(zaz1_private_key("Z1-transitionalCoS-ds")),
        key_agreement=_acb(),
        recipient_key_agreement_key=device_public_key("ka"),
    )
    assert len(rebuilt) == len(raw)
    assert rebuilt[: frame.content_end] == raw[: frame.content_end]
    again = decode_frame(rebuilt)
    verify_signature(again, zaz1_public_key("Z1-transitionalCoS-ds"))
    verify_mac_with(again, _acb(), device_public_key("ka"))


def test_a_bare_command_is_returned_without_the_mac_wrapper() -> None:
    raw = build_command(
        originator=TCOS,
        recipient=DEVICE,
        originator_counter=1,
        message_code=MessageCode.CS02B_ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY,
        content=_command(CredentialsReplacementMode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY, 1),
        signer=SoftwareSigner(fresh_key()),
        key_agreement=None,
    )
    assert raw[0] == 0xDF
    assert decode_frame(raw).ciphering is None


def test_a_maced_command_needs_the_device_key() -> None:
    with pytest.raises(EncodeError):
        build_command(
            originator=TCOS,
            recipient=DEVICE,
            originator_counter=1,
            message_code=0x0107,
            content=b"\x30\x00",
            signer=None,
            key_agreement=_acb(),
        )


def test_a_meter_style_signed_response_decodes_and_verifies() -> None:
    device_ds = fresh_key()
    cell = TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT)
    outcome = ReplacementOutcome(cell, StatusCode.SUCCESS, TCOS, bytes(8), TCOS, bytes(range(8)))
    response = UpdateSecurityCredentialsResponse(
        ExecutionOutcome(6001, CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS, (), (outcome,) * 4)
    )
    apdu = build_apdu(
        cra_flag=CraFlag.RESPONSE,
        originator=DEVICE,
        recipient=TCOS,
        originator_counter=6001,
        message_code=MessageCode.CS02B_SUPPLIER_BY_TRANS_COS,
        content=response,
        signer=SoftwareSigner(device_ds),
        date_time=RTDS_RESPONSE_DATE_TIME,
        length_style=LengthStyle.DEVICE,
    )
    assert apdu.content[:4] == b"\x30\x82\x00" + bytes((len(apdu.content) - 4,))
    frame = decode_frame(apdu.encode())
    assert decode_payload(frame) == response
    verify_signature(frame, device_ds.public_key())


def test_a_signer_returning_der_is_refused() -> None:
    class DerSigner:
        def sign_digest(self, digest: bytes) -> bytes:
            return b"\x30" + bytes(69)

    apdu = decode_frame(rtds_hex(RTDS_623, IMMEDIATE_COMMAND)).apdu
    with pytest.raises(EncodeError):
        sign_apdu(apdu, DerSigner())
