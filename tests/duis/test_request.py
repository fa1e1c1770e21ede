"""The SRV 6.23 request as typed values (docs/duis-xmldsig-smki.md §1.1, §1.2, §1.5)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.duis import (
    CANCELLATION_SENTINEL,
    CounterNotIncreasing,
    DuisError,
    DuisFailure,
    DuisSchema,
    ExecutionKind,
    InvalidBody,
    InvalidRequestId,
    ReplacementCertificatesCoS,
    RequestHeader,
    RequestId,
    RequestRefused,
    ResponseCode,
    ServiceRequest,
    UpdateSecurityCredentialsCoS,
    build_update_security_credentials_cos,
    check_counter_increases,
    parse_document,
    read_update_security_credentials_cos,
    receive_update_security_credentials_cos,
    resign,
    sign_document,
)
from openecos.eui import Eui64
from tests.duis.conftest import SignerPki, template_623

SUPPLIER = Eui64.parse("90-B3-D5-1F-30-01-00-00")
DEVICE = Eui64.parse("00-DB-12-34-56-78-90-A0")


@pytest.mark.parametrize(
    ("kind", "counter", "when", "expected"),
    [
        ("immediate", 1006, None, ExecutionKind.IMMEDIATE),
        ("future-dated", 1007, dt.datetime(2030, 1, 2, tzinfo=dt.UTC), ExecutionKind.FUTURE_DATED),
        ("cancellation", 1008, CANCELLATION_SENTINEL, ExecutionKind.CANCELLATION),
    ],
)
def test_templates_parse_to_typed_values(
    kind: str, counter: int, when: dt.datetime | None, expected: ExecutionKind
) -> None:
    request = read_update_security_credentials_cos(parse_document(template_623(kind)))
    assert request.header == RequestHeader(RequestId(SUPPLIER, DEVICE, counter), 1, "6.23", "6.23")
    body = request.body
    assert body.kind is expected
    assert body.execution_date_time == when
    assert body.supplier_floor_seq_number == 0
    assert body.supplier_prepayment_top_up_floor_seq_number == 0
    assert body.apply_time_based_cpv_checks is True
    assert body.import_mpxn == "1312345678333"
    assert len(body.certification_path_certificates) == 1
    # Every certificate decodes as X.509; serials from docs §3.3.
    serials = [x509.load_der_x509_certificate(c).serial_number for c in body.certificates]
    assert serials == [
        0x44B7F8A61EA5FD82B008642B407C4033,
        0x2942908480978EDC7B1A68F285DCA154,
        0x608C1321B2426624B0D521A4559D9B08,
        0x71872BDBC82789BC1401CE01BA06ADA3,
    ]


def test_signed_template_passes_the_whole_receiver(schema: DuisSchema, pki: SignerPki) -> None:
    signed = resign(template_623("future-dated"), pki.identity)
    received = receive_update_security_credentials_cos(
        signed, schema=schema, resolve_certificate=pki.resolver
    )
    assert received.request.body.kind is ExecutionKind.FUTURE_DATED
    assert received.request.header.request_id.originator == SUPPLIER
    assert b"ImportMPxN" in received.signed_bytes


def _edit(kind: str, old: bytes, new: bytes) -> bytes:
    text = template_623(kind)
    assert old in text
    return text.replace(old, new, 1)


def _first_cert(text: bytes) -> bytes:
    match = re.search(rb"<sr:DigitalSigningCertificate>(.*?)</", text)
    assert match is not None
    return match.group(1)


CERT = _first_cert(template_623("immediate"))

REFUSED = {
    "wrong-service-reference": (
        b"<sr:ServiceReference>6.23<",
        b"<sr:ServiceReference>6.15<",
        DuisFailure.SERVICE_REFERENCE_MISMATCH,
    ),
    "wrong-variant": (
        b"<sr:ServiceReferenceVariant>6.23<",
        b"<sr:ServiceReferenceVariant>6.24.1<",
        DuisFailure.SERVICE_REFERENCE_MISMATCH,
    ),
    "command-variant-4": (
        b"<sr:CommandVariant>1<",
        b"<sr:CommandVariant>4<",
        DuisFailure.COMMAND_VARIANT_NOT_ALLOWED,
    ),
    "no-timezone": (
        b"2030-01-02T00:00:00.00Z",
        b"2030-01-02T00:00:00.00",
        DuisFailure.INVALID_BODY,
    ),
    "base64-garbage-libxml2-accepts": (CERT, b"%%%" + CERT, DuisFailure.INVALID_BODY),
    "base64-non-canonical": (CERT, CERT[:-1] + b"d", DuisFailure.INVALID_BODY),
    "der-trailing-bytes": (
        CERT,
        base64.b64encode(base64.b64decode(CERT) + b"\x00\x00"),
        DuisFailure.INVALID_BODY,
    ),
    "der-truncated": (
        CERT,
        base64.b64encode(base64.b64decode(CERT)[:-3]),
        DuisFailure.INVALID_BODY,
    ),
    "not-a-sequence": (CERT, base64.b64encode(b"\x04\x03abc"), DuisFailure.INVALID_BODY),
    "mpxn-letters": (b">1312345678333<", b">13123456783AB<", DuisFailure.INVALID_BODY),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_checks_the_xsd_does_not_make(name: str, schema: DuisSchema, pki: SignerPki) -> None:
    old, new, failure = REFUSED[name]
    signed = resign(_edit("future-dated", old, new), pki.identity)
    with pytest.raises(DuisError) as info:
        receive_update_security_credentials_cos(
            signed, schema=schema, resolve_certificate=pki.resolver
        )
    assert info.value.failure is failure
    assert info.value.response_code.is_error


def test_service_reference_mismatch_passes_the_xsd(schema: DuisSchema) -> None:
    # docs §1.5: the XSD does not tie the header to the body, so the check is ours.
    root = parse_document(
        _edit("immediate", b"<sr:ServiceReference>6.23<", b"<sr:ServiceReference>6.15<")
    )
    schema.validate(root)
    with pytest.raises(RequestRefused):
        read_update_security_credentials_cos(root)


def test_unsigned_request_is_refused(schema: DuisSchema, pki: SignerPki) -> None:
    root = parse_document(template_623("immediate"), minify=True)
    root.remove(root[-1])  # the placeholder signature
    from lxml import etree

    with pytest.raises(DuisError) as info:
        receive_update_security_credentials_cos(
            etree.tostring(root), schema=schema, resolve_certificate=pki.resolver
        )
    assert info.value.failure is DuisFailure.SIGNATURE_MISSING


def test_response_document_is_not_a_request(schema: DuisSchema, pki: SignerPki) -> None:
    from tests.duis.conftest import sample

    with pytest.raises(RequestRefused) as info:
        receive_update_security_credentials_cos(
            sample("message.xml"), schema=schema, resolve_certificate=pki.resolver
        )
    assert info.value.failure is DuisFailure.UNEXPECTED_MESSAGE
    assert info.value.response_code is ResponseCode.E13


def test_placeholder_signature_of_templates_does_not_verify(
    schema: DuisSchema, pki: SignerPki
) -> None:
    with pytest.raises(DuisError) as info:
        receive_update_security_credentials_cos(
            template_623("immediate"), schema=schema, resolve_certificate=pki.resolver
        )
    assert info.value.failure in (
        DuisFailure.SIGNATURE_INVALID,
        DuisFailure.UNKNOWN_SIGNING_CERTIFICATE,
    )


# -- RequestID and the counter rule ---------------------------------------------------------


def test_request_id_parses_and_swaps_for_the_response_id() -> None:
    rid = RequestId.parse("90-b3-d5-1f-30-01-00-00:00-DB-12-34-56-78-90-A0:18446744073709551615")
    assert (rid.originator, rid.target, rid.counter) == (SUPPLIER, DEVICE, 2**64 - 1)
    assert (
        rid.response_id() == "00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:18446744073709551615"
    )


@pytest.mark.parametrize(
    "text",
    [
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:18446744073709551616",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:01",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0",
        "90B3D51F30010000:00DB1234567890A0:1",
        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:-1",
        "",
    ],
)
def test_malformed_request_ids_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequestId):
        RequestId.parse(text)


def test_counter_must_strictly_increase_per_originator() -> None:
    rid = RequestId(SUPPLIER, DEVICE, 1007)
    check_counter_increases(rid, None)
    check_counter_increases(rid, 1006)
    for last in (1007, 1008):
        with pytest.raises(CounterNotIncreasing) as info:
            check_counter_increases(rid, last)
        assert info.value.failure is DuisFailure.COUNTER_NOT_INCREASING


# -- round trip -----------------------------------------------------------------------------

_certs = st.binary(min_size=1, max_size=40).map(lambda b: bytes([0x30, len(b)]) + b)
_times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2999, 1, 1), timezones=st.just(dt.UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


@settings(max_examples=40, deadline=None)
@given(
    counter=st.integers(0, 2**64 - 1),
    floor=st.integers(0, 2**63 - 1),
    top_up=st.none() | st.integers(0, 2**63 - 1),
    certs=st.lists(_certs, min_size=4, max_size=6),
    cpv=st.booleans(),
    mpxn=st.from_regex(r"[0-9]{1,13}", fullmatch=True),
    when=st.none() | _times | st.just(CANCELLATION_SENTINEL),
)
def test_request_round_trips_through_signed_xml(
    schema: DuisSchema,
    pki: SignerPki,
    counter: int,
    floor: int,
    top_up: int | None,
    certs: list[bytes],
    cpv: bool,
    mpxn: str,
    when: dt.datetime | None,
) -> None:
    request = ServiceRequest(
        RequestHeader(RequestId(SUPPLIER, DEVICE, counter), 1, "6.23", "6.23"),
        UpdateSecurityCredentialsCoS(
            supplier_floor_seq_number=floor,
            supplier_prepayment_top_up_floor_seq_number=top_up,
            replacement_certificates=ReplacementCertificatesCoS(certs[0], certs[1], None),
            certification_path_certificates=tuple(certs[3:]),
            apply_time_based_cpv_checks=cpv,
            import_mpxn=mpxn,
            execution_date_time=when,
        ),
    )
    signed = sign_document(build_update_security_credentials_cos(request), pki.identity)
    received = receive_update_security_credentials_cos(
        signed, schema=schema, resolve_certificate=pki.resolver
    )
    assert received.request == request


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=30))
def test_body_value_readers_raise_only_invalid_body(text: str) -> None:
    from openecos.duis.xsdtypes import certificate_from_base64, parse_datetime

    for reader in (certificate_from_base64, parse_datetime):
        with contextlib.suppress(InvalidBody):
            reader(text, "field")


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_correctly_signed_hostile_requests_raise_only_duis_errors(
    schema: DuisSchema, pki: SignerPki, data: st.DataObject
) -> None:
    # The sender holds a valid key but writes garbage: every refusal is typed.
    text = template_623("future-dated")
    body = text[: text.index(b"<ds:Signature")] + b"</sr:Request>"
    position = data.draw(st.integers(0, len(body) - 1))
    cut = data.draw(st.integers(0, 8))
    extra = data.draw(st.binary(max_size=6) | st.sampled_from([b"<", b"Z", b"-1", b"%%", b" "]))
    mutated = body[:position] + extra + body[position + cut :]
    try:
        received = receive_update_security_credentials_cos(
            resign(mutated, pki.identity), schema=schema, resolve_certificate=pki.resolver
        )
    except DuisError:
        return
    assert received.request.header.service_reference == "6.23"
