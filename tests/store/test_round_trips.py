"""Property tests: what goes into a repository comes back equal, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, MessageCode, RemotePartyRole
from openecos.store import (
    CommandRecord,
    CommandStatus,
    CosCredentialState,
    Device,
    DeviceStatus,
    DeviceType,
    DuplicateKey,
    KnownCertificate,
    RequestRecord,
    RequestStatus,
    Store,
)
from openecos.store.records import U64_MAX

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

T = TypeVar("T")
TCOS = CosCredentialState.TCOS
euis = st.binary(min_size=8, max_size=8).map(Eui64)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
)


@st.composite
def devices(draw: st.DrawFn) -> Device:
    state = draw(st.sampled_from(CosCredentialState))
    return Device(
        eui=draw(euis),
        device_type=draw(st.sampled_from(DeviceType)),
        status=draw(st.sampled_from(DeviceStatus)),
        mpxn=draw(st.none() | st.from_regex(r"[0-9]{13}|[0-9]{6,10}", fullmatch=True)),
        manufacturer=draw(texts),
        model=draw(texts),
        firmware_version=draw(st.none() | texts.map(lambda t: t[:8])),
        credential_state=state,
        born_ecos=draw(st.booleans()) if state is CosCredentialState.ECOS else False,
    )


def added(add: Callable[[T], None], record: T) -> bool:
    """Adds a record; False if an earlier example already used its key."""
    try:
        add(record)
    except DuplicateKey:
        return False
    return True


@SETTINGS
@given(device=devices())
def test_device_round_trips(store: Store, device: Device) -> None:
    if added(store.devices.add, device):
        assert store.devices.get(device.eui) == device


@SETTINGS
@given(
    originator=euis,
    target=euis,
    counter=st.integers(0, U64_MAX),
    received=instants,
    execution=st.none() | instants,
    status=st.sampled_from(RequestStatus),
    raw=st.binary(min_size=1, max_size=300),
    cos_party=st.none() | euis,
)
def test_request_round_trips(
    store: Store,
    originator: Eui64,
    target: Eui64,
    counter: int,
    received: datetime,
    execution: datetime | None,
    status: RequestStatus,
    raw: bytes,
    cos_party: Eui64 | None,
) -> None:
    record = RequestRecord(
        originator=originator,
        target=target,
        counter=counter,
        service_reference="6.23",
        service_reference_variant="6.23",
        received_at=received,
        raw_xml=raw,
        status=status,
        execution_at=execution,
        cos_party=cos_party,
    )
    if added(store.requests.add, record):
        stored = store.requests.get(record.request_id)
        assert stored == record
        assert stored.received_at.tzinfo is UTC


@SETTINGS
@given(
    serial=st.integers(0, (1 << 160) - 1),
    der=st.binary(min_size=1, max_size=200),
    subject=st.none() | euis,
    role=st.none() | st.sampled_from(RemotePartyRole),
    key_usage=st.sampled_from(KeyUsage),
    issuer_cn=st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
)
def test_certificate_round_trips(
    store: Store,
    serial: int,
    der: bytes,
    subject: Eui64 | None,
    role: RemotePartyRole | None,
    key_usage: KeyUsage,
    issuer_cn: str,
) -> None:
    cert = KnownCertificate(der, f"CN={issuer_cn}, OU=07", serial, subject, role, key_usage)
    if added(store.certificates.add, cert):
        assert store.certificates.by_issuer_serial(f"CN={issuer_cn},OU=07", serial) == cert


@SETTINGS
@given(
    counter=st.integers(0, U64_MAX),
    code=st.sampled_from(MessageCode),
    payload=st.binary(min_size=1, max_size=300),
    created=instants,
    status=st.sampled_from([s for s in CommandStatus if not s.in_flight]),
    response=st.none() | st.binary(max_size=100),
)
def test_command_round_trips(
    store: Store,
    counter: int,
    code: MessageCode,
    payload: bytes,
    created: datetime,
    status: CommandStatus,
    response: bytes | None,
) -> None:
    eui = Eui64.from_int(1)
    meter = Device(eui, DeviceType.ESME, DeviceStatus.COMMISSIONED, None, "m", "m", None, TCOS)
    added(store.devices.add, meter)
    record = CommandRecord(
        signer=Eui64.from_int(2),
        originator_counter=counter,
        device=eui,
        message_code=code,
        payload=payload,
        created_at=created,
        status=status,
        response=response,
    )
    if added(store.commands.add, record):
        assert store.commands.get(record.signer, counter) == record
