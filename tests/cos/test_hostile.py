"""Hostile and arbitrary inputs: the checks only ever answer with CosRejected, and device
answers only with DeviceMessageRefused (RTDS 6.23 vectors mutated; tests/cos/rtds.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openecos.cos import (
    CheckConfig,
    CheckedRequest,
    CosRejected,
    DeviceMessageRefused,
    build_supplier_by_trans_cos,
    check_request,
    derive_outcome,
    read_device_message,
    verify_device_message,
)
from openecos.duis import CANCELLATION_SENTINEL, ReplacementCertificatesCoS, RequestId
from openecos.eui import Eui64
from openecos.gbcs import encode_content
from openecos.smki import SmkiCertificate
from openecos.store.enums import CommandStatus, DeviceStatus, DeviceType, UserRole
from tests.cos.rtds import (
    DEVICE,
    FUTURE_DATED_ALERT,
    FUTURE_DATED_COMMAND,
    IMMEDIATE_COMMAND,
    IMMEDIATE_RESPONSE,
    NOW,
    PARTIES,
    SUPPLIER1,
    SUPPLIER2,
    certification_path,
    device,
    device_certificate,
    inputs,
    registered,
    replacement_certificates,
    rtds_command,
    service_request,
    user,
    z1_anchor,
    zaz1_certificate_der,
)
from tests.reference import RTDS_623, rtds_hex

EUIS = st.sampled_from([SUPPLIER1, SUPPLIER2, DEVICE, Eui64.parse("0000000000000000")])
TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(UTC),
)


@st.composite
def certificate_pool(draw: st.DrawFn) -> bytes:
    ds, ka, top_up = replacement_certificates()
    pool = [
        ds,
        ka,
        top_up,
        certification_path()[0],
        zaz1_certificate_der("Z1-transitionalCoS-ds"),
        zaz1_certificate_der("Z1-supplier-ds"),
        device_certificate("ds").der,
    ]
    choice = draw(st.integers(min_value=0, max_value=len(pool)))
    if choice < len(pool):
        certificate = pool[choice]
        if draw(st.booleans()):
            return certificate
        # Flip one byte somewhere in a real certificate.
        at = draw(st.integers(min_value=0, max_value=len(certificate) - 1))
        return certificate[:at] + bytes([certificate[at] ^ 0xFF]) + certificate[at + 1 :]
    return draw(st.binary(max_size=64))


@st.composite
def check_inputs(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    """The valid RTDS world with each field, independently, replaced now and then."""

    def sometimes(valid: object, other: st.SearchStrategy[object]) -> object:
        return draw(other) if draw(st.integers(min_value=0, max_value=5)) == 0 else valid

    ds, ka, top_up = replacement_certificates()
    floors = st.integers(min_value=-2, max_value=2**64 + 1)
    mpxns = st.sampled_from(["1312345678333", "1312345678999", "123456"])
    originator = sometimes(SUPPLIER2, EUIS)
    request = service_request(
        originator=originator,
        target=sometimes(DEVICE, EUIS),
        execution_date_time=sometimes(
            None, st.one_of(st.just(CANCELLATION_SENTINEL), TIMES, st.datetimes())
        ),
        supplier_floor_seq_number=sometimes(0, floors),
        supplier_prepayment_top_up_floor_seq_number=sometimes(0, st.none() | floors),
        replacement_certificates=ReplacementCertificatesCoS(
            sometimes(ds, certificate_pool()),
            sometimes(ka, st.none() | certificate_pool()),
            sometimes(top_up, st.none() | certificate_pool()),
        ),
        certification_path_certificates=sometimes(
            certification_path(), st.lists(certificate_pool(), max_size=3).map(tuple)
        ),
        apply_time_based_cpv_checks=draw(st.booleans()),
        import_mpxn=sometimes("1312345678333", mpxns),
    )
    roles = st.frozensets(st.sampled_from(list(UserRole)), min_size=1)
    start = NOW - timedelta(days=1)
    return inputs(
        request,
        signer=sometimes(originator, st.none() | EUIS),
        user=sometimes(
            user(originator), st.none() | st.builds(lambda u, r: user(u, r), EUIS, roles)
        ),
        device=sometimes(
            device(),
            st.none()
            | st.builds(
                lambda eui, status, kind, mpxn: device(
                    eui=eui, status=status, device_type=kind, mpxn=mpxn
                ),
                EUIS,
                st.sampled_from(list(DeviceStatus)),
                st.sampled_from(list(DeviceType)),
                st.sampled_from(["1312345678333", "1312345678999", None]),
            ),
        ),
        registered_supplier=sometimes(
            registered(originator, since=start),
            st.none()
            | st.builds(
                lambda u, end, mpxn: registered(
                    u, since=start, until=None if end is None else start + end, mpxn=mpxn
                ),
                EUIS,
                st.none()
                | st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)),
                mpxns,
            ),
        ),
        in_flight_command=sometimes(None, st.sampled_from(list(CommandStatus))),
        now=sometimes(NOW, TIMES),
        trust_anchors=sometimes((z1_anchor(),), st.just(())),
        config=CheckConfig(require_certificates_of_requester=draw(st.booleans())),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(check_inputs())
def test_checks_answer_only_with_a_checked_request_or_a_rejection(made) -> None:  # type: ignore[no-untyped-def]
    try:
        checked = check_request(made)
    except CosRejected as exc:
        assert exc.response_code.is_error
        return
    assert isinstance(checked, CheckedRequest)
    # Whatever passed builds a command the codec accepts.
    encode_content(build_supplier_by_trans_cos(checked, 1))


def _validity_window() -> tuple[datetime, datetime]:
    certificates = [SmkiCertificate.from_der(der) for der in replacement_certificates()]
    certificates.append(z1_anchor())
    return max(c.not_before for c in certificates), min(c.not_after for c in certificates)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_valid_world_passes_whenever_its_certificates_are_valid(data: st.DataObject) -> None:
    start, end = _validity_window()
    now = data.draw(
        st.datetimes(
            min_value=start.replace(tzinfo=None),
            max_value=end.replace(tzinfo=None),
            timezones=st.just(UTC),
        )
    )
    since = start - timedelta(days=1)
    checked = check_request(inputs(now=now, registered_supplier=registered(since=since)))
    assert checked.device == DEVICE


ANSWERS = [IMMEDIATE_RESPONSE, FUTURE_DATED_ALERT]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ANSWERS), st.data())
def test_mutated_device_answers_are_refused_with_a_problem_or_handled(
    name: str, data: st.DataObject
) -> None:
    raw = bytearray(rtds_hex(RTDS_623, name))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[at] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    command = IMMEDIATE_COMMAND if name == IMMEDIATE_RESPONSE else FUTURE_DATED_COMMAND
    try:
        received = read_device_message(bytes(raw[:cut]) if cut < len(raw) else bytes(raw), PARTIES)
        verify_device_message(received, device_certificate("ds").der)
        derive_outcome(received, rtds_command(command), RequestId(SUPPLIER2, DEVICE, 1))
    except DeviceMessageRefused:
        pass
