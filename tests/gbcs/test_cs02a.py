"""CS02a "Provide Security Credential Details": the RTDS 6.24.1 vectors and a TCoS-cell read."""

from __future__ import annotations

from openecos.eui import Eui64
from openecos.gbcs import (
    CellUsage,
    CraFlag,
    KeyUsage,
    LengthStyle,
    MessageCode,
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyRole,
    StatusCode,
    TrustAnchorCellIdentifier,
    build_apdu,
    decode_frame,
    decode_payload,
    decode_provide_security_credential_details_response,
    encode_content,
)
from tests.gbcs.helpers import DEVICE
from tests.reference import RTDS_623, RTDS_CS02A, rtds_hex

ACB = Eui64.parse("90B3D51F30000002")
ACB_KA = TrustAnchorCellIdentifier(RemotePartyRole.ACCESS_CONTROL_BROKER, KeyUsage.KEY_AGREEMENT)


def _decode(name: str) -> object:
    return decode_payload(decode_frame(rtds_hex(RTDS_CS02A, name)))


def test_the_command_names_the_acb_cell_and_the_roles_asked_for() -> None:
    command = _decode("CS02aMAC_6.24.1_SUCCESS_COMMAND_GBCS.HEX")
    assert command == ProvideSecurityCredentialDetailsCommand(
        ACB_KA, (RemotePartyRole.SUPPLIER, RemotePartyRole.NETWORK_OPERATOR)
    )


def test_the_success_response_lists_each_role_s_cells() -> None:
    response = _decode("CS02aMAC_6.24.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert isinstance(response, ProvideSecurityCredentialDetailsResponse)
    supplier, network_operator = response.remote_party_details
    assert supplier.remote_party_role is RemotePartyRole.SUPPLIER
    assert supplier.status_code is StatusCode.SUCCESS
    assert supplier.trust_anchor_cell_details is not None
    assert [(c.key_usage, c.cell_usage) for c in supplier.trust_anchor_cell_details] == [
        (KeyUsage.DIGITAL_SIGNATURE, CellUsage.MANAGEMENT),
        (KeyUsage.KEY_AGREEMENT, CellUsage.MANAGEMENT),
        (KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP),
    ]
    supplier_eui = Eui64.parse("90B3D51F30010000")
    assert {c.subject_unique_id for c in supplier.trust_anchor_cell_details} == {supplier_eui}
    assert network_operator.remote_party_role is RemotePartyRole.NETWORK_OPERATOR
    assert network_operator.current_seq_number is not None
    assert network_operator.trust_anchor_cell_details is not None
    assert len(network_operator.trust_anchor_cell_details) == 2


def test_the_success_response_subject_ids_match_the_623_existing_supplier() -> None:
    # The 6.23 immediate response reports the same old supplier DS key identifier.
    response = _decode("CS02aMAC_6.24.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert isinstance(response, ProvideSecurityCredentialDetailsResponse)
    cs02b = decode_payload(
        decode_frame(
            rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
        )
    )
    outcome = getattr(cs02b, "execution_outcome", None)
    assert outcome is not None
    supplier_cells = response.remote_party_details[0].trust_anchor_cell_details
    assert supplier_cells is not None
    assert [c.subject_key_identifier for c in supplier_cells] == [
        o.existing_subject_key_id for o in outcome.replacement_outcomes
    ]


def test_a_role_without_an_anchor_reports_not_found_and_nothing_else() -> None:
    response = _decode("CS02aMAC_6.24.1_ERROR_RESPONSE_GBCS.HEX")
    assert isinstance(response, ProvideSecurityCredentialDetailsResponse)
    acb, network_operator = response.remote_party_details
    assert acb.status_code is StatusCode.SUCCESS
    assert network_operator.status_code is StatusCode.TRUST_ANCHOR_NOT_FOUND
    assert network_operator.current_seq_number is None
    assert network_operator.trust_anchor_cell_details is None


def test_the_meter_length_quirk_appears_in_cs02a_responses_too() -> None:
    frame = decode_frame(rtds_hex(RTDS_CS02A, "CS02aMAC_6.24.1_SUCCESS_RESPONSE_GBCS.HEX"))
    assert frame.apdu.content.startswith(b"\x30\x82\x00")
    response = decode_payload(frame)
    assert isinstance(response, ProvideSecurityCredentialDetailsResponse)
    assert encode_content(response, LengthStyle.DEVICE) == frame.apdu.content
    der = encode_content(response)
    assert decode_provide_security_credential_details_response(der) == response


def test_a_transitional_cos_credentials_read_builds_and_decodes() -> None:
    command = ProvideSecurityCredentialDetailsCommand(ACB_KA, (RemotePartyRole.TRANSITIONAL_COS,))
    apdu = build_apdu(
        cra_flag=CraFlag.COMMAND,
        originator=ACB,
        recipient=DEVICE,
        originator_counter=0x516,
        message_code=MessageCode.CS02A_PROVIDE_SECURITY_CREDENTIAL_DETAILS,
        content=command,
        signer=None,
    )
    frame = decode_frame(apdu.encode())
    assert frame.apdu.signature == b""
    assert decode_payload(frame) == command
