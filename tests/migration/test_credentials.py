"""The CS02a read of the transitionalCoS cell, answered by the simulated meter, and its meaning."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.gbcs import (
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyDetails,
    TrustAnchorCellContents,
    decode_frame,
    decode_payload,
)
from openecos.gbcs.codes import KeyUsage, RemotePartyRole, StatusCode
from openecos.migration import (
    ACB_KA_CELL,
    CredentialReading,
    CredentialsUnreadable,
    interpret_credentials,
    read_credentials_response,
    reading_of,
)
from openecos.smki.sandbox import ACCESS_CONTROL_BROKER
from tests.migration.helpers import DEVICE, Meter, identity, key, meter
from tests.reference import RTDS_CS02A, rtds_hex


def _reading(m: Meter, answer: bytes, counter: int = 1300) -> CredentialReading:
    return reading_of(
        answer,
        acb=ACCESS_CONTROL_BROKER,
        device=DEVICE,
        originator_counter=counter,
        acb_key_agreement=key("acb-ka"),
        device_key_agreement_key=m.device_ka(),
        ecos=identity("ecos-ds"),
        tcos=identity("tcos-ds"),
    )


def test_the_read_is_a_cs02a_from_the_acb_asking_about_transitional_cos() -> None:
    m = meter()
    frame = decode_frame(m.credentials_read())
    content = decode_payload(frame)
    assert frame.apdu.originator == ACCESS_CONTROL_BROKER
    assert frame.apdu.signature == b""  # unsigned, MAC only, as RTDS 6.24.1
    assert content.authorising_remote_party_ta_cell == ACB_KA_CELL  # type: ignore[union-attr]
    assert content.remote_party_roles == (RemotePartyRole.TRANSITIONAL_COS,)  # type: ignore[union-attr]


def test_rtds_read_command_has_the_same_shape() -> None:
    # reference/rtds/6.24.1_CS02aMAC: from the ACB, unsigned, authorised by the ACB KA cell.
    frame = decode_frame(rtds_hex(RTDS_CS02A, "CS02aMAC_6.24.1_SUCCESS_COMMAND_GBCS.HEX"))
    content = decode_payload(frame)
    assert frame.apdu.signature == b""
    assert content.authorising_remote_party_ta_cell == ACB_KA_CELL  # type: ignore[union-attr]


def test_before_migration_the_meter_reads_tcos_and_after_it_ecos() -> None:
    m = meter()
    answer = m.send(m.credentials_read(1300))
    assert answer is not None
    assert _reading(m, answer, 1300) is CredentialReading.TCOS
    m.send(m.migration_command())
    answer = m.send(m.credentials_read(1301))
    assert answer is not None
    assert _reading(m, answer, 1301) is CredentialReading.ECOS


def test_an_answer_to_another_read_is_unreadable() -> None:
    m = meter()
    answer = m.send(m.credentials_read(1300))
    assert answer is not None
    assert _reading(m, answer, 1299) is CredentialReading.UNREADABLE


def test_an_answer_with_a_bad_mac_is_refused() -> None:
    m = meter()
    answer = m.send(m.credentials_read())
    assert answer is not None
    with pytest.raises(CredentialsUnreadable):
        read_credentials_response(
            answer[:-1] + bytes([answer[-1] ^ 0x55]),
            acb=ACCESS_CONTROL_BROKER,
            device=DEVICE,
            originator_counter=1300,
            acb_key_agreement=key("acb-ka"),
            device_key_agreement_key=m.device_ka(),
        )


def _response(details: RemotePartyDetails) -> ProvideSecurityCredentialDetailsResponse:
    return ProvideSecurityCredentialDetailsResponse((details,))


def _holding(name: str) -> ProvideSecurityCredentialDetailsResponse:
    who = identity(name)
    cell = TrustAnchorCellContents(
        KeyUsage.DIGITAL_SIGNATURE, who.subject_unique_id, who.subject_key_id
    )
    return _response(
        RemotePartyDetails(RemotePartyRole.TRANSITIONAL_COS, StatusCode.SUCCESS, 7, (cell,))
    )


@pytest.mark.parametrize(
    ("holder", "reading"),
    [
        ("ecos-ds", CredentialReading.ECOS),
        ("tcos-ds", CredentialReading.TCOS),
        ("supplier-a-ds", CredentialReading.OTHER),
    ],
)
def test_the_cell_holder_decides_the_reading(holder: str, reading: CredentialReading) -> None:
    result = interpret_credentials(
        _holding(holder), ecos=identity("ecos-ds"), tcos=identity("tcos-ds")
    )
    assert result is reading


def test_same_entity_with_another_key_is_other() -> None:
    # A TCoS-by-TCoS swap may keep the EUI (RTDS Z1 → Z1b): the SKI must match too.
    ecos = identity("ecos-ds")
    cell = TrustAnchorCellContents(KeyUsage.DIGITAL_SIGNATURE, ecos.subject_unique_id, bytes(8))
    response = _response(
        RemotePartyDetails(RemotePartyRole.TRANSITIONAL_COS, StatusCode.SUCCESS, 0, (cell,))
    )
    assert (
        interpret_credentials(response, ecos=ecos, tcos=identity("tcos-ds"))
        is CredentialReading.OTHER
    )


def test_no_anchor_is_empty() -> None:
    response = _response(
        RemotePartyDetails(RemotePartyRole.TRANSITIONAL_COS, StatusCode.TRUST_ANCHOR_NOT_FOUND)
    )
    result = interpret_credentials(response, ecos=identity("ecos-ds"), tcos=identity("tcos-ds"))
    assert result is CredentialReading.EMPTY


def test_an_answer_without_the_role_is_unreadable() -> None:
    response = _response(RemotePartyDetails(RemotePartyRole.SUPPLIER, StatusCode.SUCCESS, 0, ()))
    with pytest.raises(CredentialsUnreadable):
        interpret_credentials(response, ecos=identity("ecos-ds"), tcos=identity("tcos-ds"))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_read_as_unreadable_never_raise(data: bytes) -> None:
    assert _reading(_shared_meter(), data) is CredentialReading.UNREADABLE


@cache
def _shared_meter() -> Meter:
    return meter()
