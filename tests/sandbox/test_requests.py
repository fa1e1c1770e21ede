"""A 6.23 built for a sandbox meter passes the DUIS receiver and the signer binding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openecos.duis import (
    CANCELLATION_SENTINEL,
    DuisSchema,
    ExecutionKind,
    build_update_security_credentials_cos,
    check_signer_binding,
    receive_update_security_credentials_cos,
    sign_document,
)
from openecos.eui import Eui64
from openecos.sandbox import Sandbox, SandboxError
from openecos.sandbox.requests import new_cos_request, signing_identity
from openecos.store import DeviceType, NotFound
from tests.reference import reference_path

NOW = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def schema() -> DuisSchema:
    return DuisSchema.load(reference_path("duis", "xsd"))


def _meter(loaded: Sandbox, device_type: DeviceType, mpid_prefix: str) -> Eui64:
    with loaded.open_store() as store:
        for device in store.devices.find(device_type=device_type, limit=1000):
            assert device.mpxn is not None
            found = store.registrations.registered_supplier(device.mpxn, NOW)
            if found is not None and found.registration.supplier_mpid.startswith(mpid_prefix):
                return device.eui
    raise AssertionError("no such meter in the sandbox")


def _resolver(loaded: Sandbox):  # type: ignore[no-untyped-def]
    store = loaded.open_store()

    def resolve(issuer: str, serial: int) -> bytes | None:
        try:
            return store.certificates.by_issuer_serial(issuer, serial).der
        except NotFound:
            return None

    return resolve


@pytest.mark.parametrize(
    ("device_type", "gaining", "user"),
    [
        (DeviceType.ESME, "SUPPLIER-A", "90B3D51F40010000"),
        (DeviceType.GSME, "SUPPLIER-A", "90B3D51F40010100"),  # the split supplier's gas user
        (DeviceType.GSME, "OEBG", "90B3D51F40020000"),
    ],
)
def test_signed_request_is_received_and_bound_to_the_gaining_user(
    loaded: Sandbox, schema: DuisSchema, device_type: DeviceType, gaining: str, user: str
) -> None:
    losing = "OEB" if gaining.startswith("SUPPLIER-A") else "OEA"
    device = _meter(loaded, device_type, losing)
    built = new_cos_request(loaded, device, gaining, counter=1_700_000_000_000)
    data = sign_document(
        build_update_security_credentials_cos(built.request), signing_identity(loaded, built.user)
    )
    received = receive_update_security_credentials_cos(
        data, schema=schema, resolve_certificate=_resolver(loaded)
    )
    header, body = received.request.header, received.request.body
    assert header.request_id.originator == Eui64.parse(user)
    assert header.request_id.target == device
    assert body.import_mpxn == built.device.mpxn
    prefix = built.user.pki_prefix
    assert body.replacement_certificates.digital_signing == (
        loaded.pki.entry(f"{prefix}-ds").certificate.der
    )
    assert body.kind is ExecutionKind.IMMEDIATE
    assert received.signature.certificate_der is not None
    leaf = check_signer_binding(
        received.signature.certificate_der,
        header.request_id.originator,
        at=NOW,
        anchors=loaded.pki.anchors,
        policies=loaded.pki.policies,
        intermediates=loaded.pki.organisation_path,
    )
    assert leaf.entity_eui == Eui64.parse(user)


def test_future_dated_and_cancellation_requests_carry_their_execution_time(
    loaded: Sandbox,
) -> None:
    device = _meter(loaded, DeviceType.ESME, "OEA")
    later = datetime(2030, 1, 2, tzinfo=UTC)
    future = new_cos_request(loaded, device, "SUPPLIER-B", counter=5, execution=later)
    cancel = new_cos_request(
        loaded, device, "SUPPLIER-B", counter=6, execution=CANCELLATION_SENTINEL
    )
    assert future.request.body.kind is ExecutionKind.FUTURE_DATED
    assert cancel.request.body.kind is ExecutionKind.CANCELLATION


def test_a_supplier_without_a_gas_mpid_cannot_gain_a_gas_meter(loaded: Sandbox) -> None:
    device = _meter(loaded, DeviceType.GSME, "OEB")
    with pytest.raises(SandboxError, match="holds no GS MPID"):
        new_cos_request(loaded, device, "90B3D51F40010000", counter=1)  # supplier A's IS user


def test_unknown_device_and_unknown_supplier_are_named(loaded: Sandbox) -> None:
    with pytest.raises(SandboxError, match="no device"):
        new_cos_request(loaded, Eui64.parse("00DB12FFFFFFFFFF"), "SUPPLIER-B", counter=1)
    device = _meter(loaded, DeviceType.ESME, "OEA")
    with pytest.raises(SandboxError, match="no participant"):
        new_cos_request(loaded, device, "SUPPLIER-Z", counter=1)
