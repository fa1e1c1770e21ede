"""Small builders of valid records for the store tests."""

from __future__ import annotations

from datetime import UTC, datetime

from openecos.eui import Eui64
from openecos.gbcs.codes import MessageCode
from openecos.store import (
    CommandRecord,
    CosCredentialState,
    Device,
    DeviceStatus,
    DeviceType,
    RequestRecord,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SUPPLIER = Eui64.parse("90B3D51F30010000")
TCOS = Eui64.parse("90B3D51F30000004")
ESME = Eui64.parse("00DB1234567890A0")


def device(eui: Eui64 = ESME, **changes: object) -> Device:
    fields: dict[str, object] = {
        "eui": eui,
        "device_type": DeviceType.ESME,
        "status": DeviceStatus.COMMISSIONED,
        "mpxn": "1200023305963",
        "manufacturer": "0101",
        "model": "ABC-1",
        "firmware_version": "01020304",
        "credential_state": CosCredentialState.TCOS,
        "born_ecos": False,
    }
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


def request(counter: int = 1, target: Eui64 = ESME, **changes: object) -> RequestRecord:
    fields: dict[str, object] = {
        "originator": SUPPLIER,
        "target": target,
        "counter": counter,
        "service_reference": "6.23",
        "service_reference_variant": "6.23",
        "received_at": T0,
        "raw_xml": b"<sr:Request/>",
    }
    fields.update(changes)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def command(counter: int, target: Eui64 = ESME, **changes: object) -> CommandRecord:
    fields: dict[str, object] = {
        "signer": TCOS,
        "originator_counter": counter,
        "device": target,
        "message_code": MessageCode.CS02B_SUPPLIER_BY_TRANS_COS,
        "payload": b"\xdf\x09" + counter.to_bytes(8, "big"),
        "created_at": T0,
    }
    fields.update(changes)
    return CommandRecord(**fields)  # type: ignore[arg-type]
