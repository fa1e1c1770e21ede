"""Classifying the meter's answer to a 0x0106 (per-cell status → success or error class)."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.gbcs import (
    ExecutionOutcome,
    ReplacementOutcome,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
    decode_frame,
    decode_payload,
)
from openecos.gbcs.codes import CellUsage, CredentialsReplacementMode, KeyUsage, StatusCode
from openecos.migration import (
    TRANSITIONAL_COS_CELL,
    AnchorIdentity,
    EcosCredential,
    ErrorClass,
    SentMigration,
    classify_outcome,
    classify_response,
)
from openecos.smki import SmkiCertificate, TestPki, create_test_pki
from openecos.smki.sandbox import ECOS_PARTY, TCOS_PARTY
from tests.migration.helpers import DEVICE, der, identity, meter, pki, sent
from tests.reference import RTDS_TCOS, rtds_hex

RTDS_RESPONSE = "CS02bTransCoSByTransCoS_NA_SUCCESS_RESPONSE_GBCS.HEX"
RTDS_COMMAND = "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX"


@cache
def foreign_pki() -> TestPki:
    other = create_test_pki()
    return other.with_entries(
        other.issue_organisation(
            "foreign-ecos",
            eui=ECOS_PARTY,
            role=TRANSITIONAL_COS_CELL.remote_party_role,
            key_usage=KeyUsage.DIGITAL_SIGNATURE,
            cell_usage=CellUsage.MANAGEMENT,
        )
    )


def test_meter_busy_is_meter_busy() -> None:
    m = meter()
    response = m.send(m.migration_command(), busy=True)
    assert response is not None
    verdict = classify_response(response, sent=sent(), device_signing_key=m.device_ds())
    assert verdict.error is ErrorClass.METER_BUSY


def test_certificate_from_another_root_is_no_trust_anchor() -> None:
    certificate = foreign_pki().entry("foreign-ecos").certificate
    credential = EcosCredential.from_der(
        certificate.der, tuple(c.der for c in pki().organisation_path)
    )
    m = meter()
    response = m.send(m.migration_command(credential=credential))
    assert response is not None
    expected = SentMigration(DEVICE, TCOS_PARTY, 6000, AnchorIdentity.of(certificate))
    verdict = classify_response(response, sent=expected, device_signing_key=m.device_ds())
    assert verdict.error is ErrorClass.NO_TRUST_ANCHOR


def test_certificate_of_the_wrong_role_is_bad_certificate() -> None:
    supplier = der("supplier-a-ds")
    credential = EcosCredential(
        supplier, tuple(c.der for c in pki().organisation_path), identity("supplier-a-ds")
    )
    m = meter()
    response = m.send(m.migration_command(credential=credential))
    assert response is not None
    verdict = classify_response(response, sent=sent(), device_signing_key=m.device_ds())
    assert verdict.error is ErrorClass.BAD_CERTIFICATE


def _success_response() -> tuple[bytes, object]:
    m = meter()
    response = m.send(m.migration_command())
    assert response is not None
    return response, m.device_ds()


def test_a_flipped_signature_byte_is_signature_invalid() -> None:
    response, key = _success_response()
    tampered = response[:-1] + bytes([response[-1] ^ 1])
    verdict = classify_response(tampered, sent=sent(), device_signing_key=key)  # type: ignore[arg-type]
    assert verdict.error is ErrorClass.SIGNATURE_INVALID


def test_a_truncated_response_is_malformed() -> None:
    response, key = _success_response()
    verdict = classify_response(response[:40], sent=sent(), device_signing_key=key)  # type: ignore[arg-type]
    assert verdict.error is ErrorClass.MALFORMED_RESPONSE


def test_a_response_to_another_counter_is_a_mismatch() -> None:
    response, key = _success_response()
    verdict = classify_response(response, sent=sent(6001), device_signing_key=key)  # type: ignore[arg-type]
    assert verdict.error is ErrorClass.RESPONSE_MISMATCH


def test_a_command_is_not_a_response() -> None:
    m = meter()
    verdict = classify_response(
        m.migration_command(), sent=sent(), device_signing_key=m.device_ds()
    )
    assert verdict.error is ErrorClass.RESPONSE_MISMATCH


def test_success_with_another_certificate_is_a_mismatch() -> None:
    response, key = _success_response()
    wrong = SentMigration(DEVICE, TCOS_PARTY, 6000, identity("tcos-ds"))
    verdict = classify_response(response, sent=wrong, device_signing_key=key)  # type: ignore[arg-type]
    assert verdict.error is ErrorClass.RESPONSE_MISMATCH


def _rtds_outcome() -> tuple[ExecutionOutcome, SentMigration]:
    response = decode_payload(decode_frame(rtds_hex(RTDS_TCOS, RTDS_RESPONSE)))
    command = decode_payload(decode_frame(rtds_hex(RTDS_TCOS, RTDS_COMMAND)))
    assert isinstance(response, UpdateSecurityCredentialsResponse)
    assert isinstance(command, UpdateSecurityCredentialsCommand)
    assert response.execution_outcome is not None
    z1b = SmkiCertificate.from_der(command.replacements[0].replacement_certificate)
    sent_rtds = SentMigration(
        Eui64.parse("00DB1234567890A0"),
        Eui64.parse("90B3D51F30000004"),
        6000,
        AnchorIdentity.of(z1b),
    )
    return response.execution_outcome, sent_rtds


def test_the_rtds_response_outcome_is_a_confirmed_migration() -> None:
    outcome, sent_rtds = _rtds_outcome()
    assert classify_outcome(outcome, sent_rtds).migrated


STATUS_CLASSES = [
    (StatusCode.RESOURCES_BUSY, ErrorClass.METER_BUSY),
    (StatusCode.INSUFFICIENT_MEMORY, ErrorClass.METER_BUSY),
    (StatusCode.BAD_CERTIFICATE, ErrorClass.BAD_CERTIFICATE),
    (StatusCode.NO_TRUST_ANCHOR, ErrorClass.NO_TRUST_ANCHOR),
    (StatusCode.TRUST_ANCHOR_NOT_FOUND, ErrorClass.TRUST_ANCHOR_NOT_FOUND),
    (StatusCode.OTHER, ErrorClass.REJECTED),
]


@pytest.mark.parametrize(("status", "error"), STATUS_CLASSES)
def test_per_cell_status_maps_to_its_error_class(status: StatusCode, error: ErrorClass) -> None:
    outcome, sent_rtds = _rtds_outcome()
    cell = outcome.replacement_outcomes[0]
    failed = ReplacementOutcome(
        cell.affected_trust_anchor_cell,
        status,
        cell.existing_subject_unique_id,
        cell.existing_subject_key_id,
        cell.existing_subject_unique_id,
        cell.existing_subject_key_id,
    )
    changed = ExecutionOutcome(6000, outcome.credentials_replacement_mode, (), (failed,))
    assert classify_outcome(changed, sent_rtds).error is error


@pytest.mark.parametrize("change", ["seq", "mode", "cells"])
def test_an_outcome_for_another_command_is_a_mismatch(change: str) -> None:
    outcome, sent_rtds = _rtds_outcome()
    seq = 6001 if change == "seq" else 6000
    mode = (
        CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS
        if change == "mode"
        else outcome.credentials_replacement_mode
    )
    cells = outcome.replacement_outcomes * (2 if change == "cells" else 1)
    changed = ExecutionOutcome(seq, mode, (), cells)
    assert classify_outcome(changed, sent_rtds).error is ErrorClass.RESPONSE_MISMATCH


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_classified_never_raised(data: bytes) -> None:
    verdict = classify_response(data, sent=sent(), device_signing_key=meter_key())
    assert verdict.error is not None


@cache
def meter_key() -> object:
    return meter().device_ds()


@cache
def _success() -> tuple[bytes, object]:
    return _success_response()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_response_changed_anywhere_is_never_taken_for_a_migration(data: st.DataObject) -> None:
    response, key = _success()
    index = data.draw(st.integers(min_value=0, max_value=len(response) - 1))
    mask = data.draw(st.integers(min_value=1, max_value=255))
    changed = response[:index] + bytes([response[index] ^ mask]) + response[index + 1 :]
    verdict = classify_response(changed, sent=sent(), device_signing_key=key)  # type: ignore[arg-type]
    assert not verdict.migrated
