"""The CS02b 0x0107 command built from a checked 6.23 reproduces RTDS byte for byte.

Vectors: reference/rtds/6.23_CS02bSupplierByTransCoS/
CS02bSupplierByTransCoS_6.23_{IMMEDIATE,FUTURE_DATED,CANCELLATION}_SUCCESS_COMMAND_GBCS.HEX
(counters 6001, 6002, 6003; floors 0 and 0; docs/gbcs-cs02b.md §5.1, §9).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from openecos.cos import (
    InvalidCounter,
    build_cos_command,
    build_supplier_by_trans_cos,
    check_request,
)
from openecos.gbcs import (
    MessageCode,
    decode_frame,
    decode_payload,
    encode_content,
    verify_mac_with,
    verify_signature,
)
from openecos.smki import SmkiCertificate
from tests.cos.rtds import (
    ACB_KA,
    CANCEL,
    CANCELLATION_COMMAND,
    DEVICE,
    FUTURE,
    FUTURE_DATED_COMMAND,
    IMMEDIATE_COMMAND,
    PARTIES,
    TCOS,
    DeviceKeyAgreement,
    SoftwareKeyAgreement,
    SoftwareSigner,
    device_certificate,
    frame,
    inputs,
    service_request,
    zaz1_certificate_der,
    zaz1_private_key,
)

VARIANTS = [
    pytest.param(IMMEDIATE_COMMAND, None, 6001, id="immediate"),
    pytest.param(FUTURE_DATED_COMMAND, FUTURE, 6002, id="future-dated-2030-01-02"),
    pytest.param(CANCELLATION_COMMAND, CANCEL, 6003, id="cancellation"),
]


@pytest.mark.parametrize(("vector", "when", "counter"), VARIANTS)
def test_content_is_byte_identical_to_rtds(
    vector: str, when: datetime | None, counter: int
) -> None:
    checked = check_request(inputs(service_request(execution_date_time=when)))
    content = encode_content(build_supplier_by_trans_cos(checked, counter))
    expected = frame(vector)
    assert content == expected.raw[expected.content_start : expected.content_end]


@pytest.mark.parametrize(("vector", "when", "counter"), VARIANTS)
def test_signed_and_maced_command_matches_rtds_up_to_the_signature(
    vector: str, when: datetime | None, counter: int
) -> None:
    checked = check_request(inputs(service_request(execution_date_time=when)))
    data = build_cos_command(
        checked,
        party=PARTIES.tcos,
        originator_counter=counter,
        signer=SoftwareSigner(zaz1_private_key("Z1-transitionalCoS-ds")),
        acb_key_agreement=SoftwareKeyAgreement(zaz1_private_key(ACB_KA)),
        device_key_agreement_key=device_certificate("ka").public_key,
    )
    built, expected = decode_frame(data), frame(vector)
    # Everything the signature covers (header and content) is RTDS's; the ECDSA
    # signature is randomised, so it and the GMAC over it differ.
    assert bytes(built.signed_bytes) == bytes(expected.signed_bytes)
    assert data[: built.content_end] == expected.raw[: expected.content_end]
    assert len(data) == len(expected.raw)
    tcos = SmkiCertificate.from_der(zaz1_certificate_der("Z1-transitionalCoS-ds"))
    assert tcos.entity_eui == TCOS
    verify_signature(built, tcos.public_key)
    # The meter checks the MAC with its own KA key and the ACB's KA public key.
    acb_public = SmkiCertificate.from_der(zaz1_certificate_der(ACB_KA)).public_key
    verify_mac_with(built, DeviceKeyAgreement(), acb_public)
    assert built.apdu.recipient == DEVICE
    assert built.apdu.message_code == MessageCode.CS02B_SUPPLIER_BY_TRANS_COS


def test_apply_time_based_cpv_checks_false_adds_disapply() -> None:
    checked = check_request(inputs(service_request(apply_time_based_cpv_checks=False)))
    command = build_supplier_by_trans_cos(checked, 6001)
    assert command.authorising_remote_party_control.apply_time_based_cpv_checks is False
    content = encode_content(command)
    assert b"\x81\x01\x01" in content[:12]  # [1] disapply inside the control block
    decoded = decode_payload(
        decode_frame(
            build_cos_command(
                checked,
                party=PARTIES.tcos,
                originator_counter=6001,
                signer=SoftwareSigner(zaz1_private_key("Z1-transitionalCoS-ds")),
                acb_key_agreement=SoftwareKeyAgreement(zaz1_private_key(ACB_KA)),
                device_key_agreement_key=device_certificate("ka").public_key,
            )
        )
    )
    assert decoded == command


def test_missing_top_up_floor_omits_the_specialist_floor() -> None:
    checked = check_request(
        inputs(service_request(supplier_prepayment_top_up_floor_seq_number=None))
    )
    changes = build_supplier_by_trans_cos(
        checked, 7
    ).authorising_remote_party_control.other_remote_party_seq_number_changes
    assert changes is not None
    assert changes[0].specialist_floor_seq_numbers is None


def test_seq_number_is_the_reserved_counter() -> None:
    checked = check_request(inputs())
    control = build_supplier_by_trans_cos(checked, 2**64 - 1).authorising_remote_party_control
    assert control.authorising_remote_party_seq_number == 2**64 - 1


@pytest.mark.parametrize("counter", [0, -1, 2**64, True])
def test_counter_outside_gbcs_range_is_refused(counter: int) -> None:
    checked = check_request(inputs())
    with pytest.raises(InvalidCounter):
        build_supplier_by_trans_cos(checked, counter)


def test_only_present_replacements_are_carried_in_order() -> None:
    request = service_request()
    rc = request.body.replacement_certificates
    body = replace(request.body, replacement_certificates=replace(rc, key_agreement=None))
    checked = check_request(inputs(replace(request, body=body)))
    command = build_supplier_by_trans_cos(checked, 6001)
    assert [r.replacement_certificate for r in command.replacements] == [
        rc.digital_signing,
        rc.key_agreement_top_up,
    ]
