"""Devices: inventory fields, CoS credential state and trust-anchor cells."""

from __future__ import annotations

import pytest

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.store import (
    CosCredentialState,
    DeviceStatus,
    DuplicateKey,
    InvalidRecord,
    NotFound,
    StaleState,
    Store,
    TrustAnchorCell,
)
from tests.store.factories import ESME, TCOS, device


def test_device_round_trips_and_is_unique(store: Store) -> None:
    store.devices.add(device())
    assert store.devices.get(ESME) == device()
    with pytest.raises(DuplicateKey):
        store.devices.add(device())
    with pytest.raises(NotFound):
        store.devices.get(Eui64.from_int(1))


def test_a_devices_region_round_trips_and_is_replaced(store: Store) -> None:
    store.devices.add(device(region="_N"))
    assert store.devices.get(ESME).region == "_N"
    store.devices.replace(device(region=None))
    assert store.devices.get(ESME) == device()


def test_credential_state_moves_only_from_the_expected_state(store: Store) -> None:
    store.devices.add(device())
    tcos, ecos = CosCredentialState.TCOS, CosCredentialState.ECOS
    store.devices.set_credential_state(ESME, ecos, expected=tcos)
    with pytest.raises(StaleState):
        store.devices.set_credential_state(ESME, ecos, expected=tcos)
    assert store.devices.get(ESME).credential_state is ecos
    with pytest.raises(NotFound):
        store.devices.set_credential_state(Eui64.from_int(1), ecos, expected=tcos)


def test_find_filters_and_pages_by_eui(store: Store) -> None:
    euis = [Eui64.from_int(0x00DB000000000000 + n) for n in range(5)]
    for n, eui in enumerate(euis):
        state = CosCredentialState.ECOS if n % 2 else CosCredentialState.TCOS
        store.devices.add(device(eui, credential_state=state))
    tcos = store.devices.find(credential_state=CosCredentialState.TCOS, limit=2)
    assert [d.eui for d in tcos] == [euis[0], euis[2]]
    rest = store.devices.find(credential_state=CosCredentialState.TCOS, after=euis[2])
    assert [d.eui for d in rest] == [euis[4]]
    assert store.devices.count_by_credential_state() == {
        CosCredentialState.TCOS: 3,
        CosCredentialState.ECOS: 2,
    }
    store.devices.set_status(euis[0], DeviceStatus.SUSPENDED)
    assert store.devices.find(status=DeviceStatus.SUSPENDED) == [
        device(euis[0], status=DeviceStatus.SUSPENDED)
    ]


def test_trust_anchor_cells_are_replaced_per_slot(store: Store) -> None:
    store.devices.add(device())
    cos = TrustAnchorCell(
        RemotePartyRole.TRANSITIONAL_COS,
        KeyUsage.DIGITAL_SIGNATURE,
        CellUsage.MANAGEMENT,
        b"\x30\x01\x01",
        TCOS,
        b"\x01" * 20,
    )
    supplier = TrustAnchorCell(
        RemotePartyRole.SUPPLIER,
        KeyUsage.KEY_AGREEMENT,
        CellUsage.PREPAYMENT_TOP_UP,
        b"\x30\x01\x02",
        Eui64.parse("90B3D51F30010000"),
        b"\x02" * 20,
    )
    store.devices.replace_trust_anchors(ESME, [cos, supplier])
    ecos = TrustAnchorCell(
        cos.role, cos.key_usage, cos.cell_usage, b"\x30\x01\x03", Eui64.from_int(5), b"\x03" * 20
    )
    store.devices.set_trust_anchor(ESME, ecos)
    assert store.devices.trust_anchors(ESME) == [supplier, ecos]
    store.devices.replace_trust_anchors(ESME, [cos])
    assert store.devices.trust_anchors(ESME) == [cos]
    with pytest.raises(NotFound):
        store.devices.set_trust_anchor(Eui64.from_int(1), cos)


def test_born_ecos_device_must_be_in_state_ecos() -> None:
    with pytest.raises(InvalidRecord):
        device(born_ecos=True)
    assert device(born_ecos=True, credential_state=CosCredentialState.ECOS).born_ecos


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("manufacturer", "x" * 31),
        ("model", ""),
        ("firmware_version", "123456789"),
        ("mpxn", "12345"),
        ("status", "Commissioned"),
        ("born_ecos", 1),
        ("region", "_I"),  # GB's GSP groups have no _I or _O
        ("region", "A"),  # the CSV reader completes "A" to "_A"; a record takes "_A" only
    ],
)
def test_device_fields_are_checked(field: str, value: object) -> None:
    with pytest.raises(InvalidRecord) as info:
        device(**{field: value})
    assert info.value.field == field
