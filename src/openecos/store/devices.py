"""The Smart Metering Inventory as the CoS service needs it.

A device row carries the DUIS inventory fields, the CoS credential state the
DCC routes 6.23 by (ecos-domain.md §H.2) and the born-ECoS flag; its
trust-anchor cells are what the DCC believes the meter holds, updated from
CS02b outcomes and CS02a reads. Credential-state changes are compare-and-set
so a stale worker cannot overwrite a newer outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from openecos.eui import Eui64
from openecos.store import emrr, schema
from openecos.store._base import Repository, integrity_kind
from openecos.store.enums import CosCredentialState, DeviceStatus, DeviceType
from openecos.store.errors import DuplicateKey, NotFound, StaleState
from openecos.store.records import Device, TrustAnchorCell

_d, _ta = schema.devices, schema.device_trust_anchors


def device_values(device: Device) -> dict[str, Any]:
    return {
        "eui": device.eui,
        "device_type": device.device_type,
        "status": device.status,
        "mpxn": device.mpxn,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "firmware_version": device.firmware_version,
        "credential_state": device.credential_state,
        "born_ecos": device.born_ecos,
        "region": device.region,
    }


def device_from_row(row: Row[Any]) -> Device:
    """A ``devices`` row as a :class:`Device` (every reader of whole inventory rows uses it)."""
    return Device(
        eui=row.eui,
        device_type=row.device_type,
        status=row.status,
        mpxn=row.mpxn,
        manufacturer=row.manufacturer,
        model=row.model,
        firmware_version=row.firmware_version,
        credential_state=row.credential_state,
        born_ecos=bool(row.born_ecos),
        region=row.region,
    )


def _cell(row: Row[Any]) -> TrustAnchorCell:
    return TrustAnchorCell(
        role=row.role,
        key_usage=row.key_usage,
        cell_usage=row.cell_usage,
        certificate_der=bytes(row.certificate_der),
        subject_eui=row.subject_eui,
        ski=bytes(row.ski),
    )


class DeviceRepository(Repository):
    """Devices and the trust-anchor cells the DCC believes they hold."""

    __slots__ = ()

    def add(self, device: Device) -> None:
        try:
            with self._db.write() as conn:
                conn.execute(insert(_d).values(**device_values(device)))
        except IntegrityError as exc:
            raise DuplicateKey(f"device {device.eui} already exists") from exc

    def get(self, eui: Eui64) -> Device:
        with self._db.read() as conn:
            row = conn.execute(select(_d).where(_d.c.eui == eui)).first()
        if row is None:
            raise NotFound(f"no device {eui}")
        return device_from_row(row)

    def replace(self, device: Device) -> None:
        """Overwrites every field of an existing device."""
        with self._db.write() as conn:
            done = conn.execute(
                update(_d).where(_d.c.eui == device.eui).values(**device_values(device))
            )
            if done.rowcount == 1:
                # Its MPxN may have changed: EMRR counts it under that MPxN's supplier.
                if device.mpxn is None:
                    emrr.attribute(conn, {device.eui: None})
                else:
                    emrr.registrations_changed(conn, [device.mpxn])
        if done.rowcount != 1:
            raise NotFound(f"no device {device.eui}")

    def set_status(self, eui: Eui64, status: DeviceStatus) -> None:
        if not isinstance(status, DeviceStatus):
            raise TypeError("status must be a DeviceStatus")
        with self._db.write() as conn:
            done = conn.execute(update(_d).where(_d.c.eui == eui).values(status=status))
        if done.rowcount != 1:
            raise NotFound(f"no device {eui}")

    def set_credential_state(
        self, eui: Eui64, state: CosCredentialState, *, expected: CosCredentialState
    ) -> None:
        """Moves the CoS credential state from ``expected`` to ``state``; raises StaleState."""
        with self._db.write() as conn:
            done = conn.execute(
                update(_d)
                .where(_d.c.eui == eui, _d.c.credential_state == expected)
                .values(credential_state=state)
            )
            if done.rowcount != 1:
                row = conn.execute(select(_d.c.credential_state).where(_d.c.eui == eui)).first()
                if row is None:
                    raise NotFound(f"no device {eui}")
                raise StaleState(
                    f"device {eui} is {row.credential_state.value}, not {expected.value}"
                )

    def find(
        self,
        *,
        credential_state: CosCredentialState | None = None,
        status: DeviceStatus | None = None,
        device_type: DeviceType | None = None,
        mpxn: str | None = None,
        after: Eui64 | None = None,
        limit: int = 1000,
    ) -> list[Device]:
        """Devices matching every given filter, in EUI order after ``after`` (keyset paging)."""
        query = select(_d).order_by(_d.c.eui).limit(limit)
        if credential_state is not None:
            query = query.where(_d.c.credential_state == credential_state)
        if status is not None:
            query = query.where(_d.c.status == status)
        if device_type is not None:
            query = query.where(_d.c.device_type == device_type)
        if mpxn is not None:
            query = query.where(_d.c.mpxn == mpxn)
        if after is not None:
            query = query.where(_d.c.eui > after)
        with self._db.read() as conn:
            return [device_from_row(row) for row in conn.execute(query)]

    def count_by_credential_state(self) -> dict[CosCredentialState, int]:
        """How many devices are in each CoS credential state (EMRR figures)."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(_d.c.credential_state, func.count()).group_by(_d.c.credential_state)
            ).all()
        counts = {state: 0 for state in CosCredentialState}
        counts.update({row[0]: int(row[1]) for row in rows})
        return counts

    def trust_anchors(self, eui: Eui64) -> list[TrustAnchorCell]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(_ta)
                .where(_ta.c.device == eui)
                .order_by(_ta.c.role, _ta.c.key_usage, _ta.c.cell_usage)
            )
            return [_cell(row) for row in rows]

    def set_trust_anchor(self, eui: Eui64, cell: TrustAnchorCell) -> None:
        """Records what one cell (role, key usage, cell usage) now holds."""
        self._write_cells(eui, [cell], replace_all=False)

    def replace_trust_anchors(self, eui: Eui64, cells: Iterable[TrustAnchorCell]) -> None:
        """Replaces every cell the DCC believes the meter holds (e.g. after a CS02a read)."""
        self._write_cells(eui, list(cells), replace_all=True)

    def _write_cells(self, eui: Eui64, cells: list[TrustAnchorCell], *, replace_all: bool) -> None:
        try:
            with self._db.write() as conn:
                where = _ta.c.device == eui
                if not replace_all:
                    for cell in cells:
                        conn.execute(
                            delete(_ta).where(
                                where,
                                _ta.c.role == cell.role,
                                _ta.c.key_usage == cell.key_usage,
                                _ta.c.cell_usage == cell.cell_usage,
                            )
                        )
                else:
                    conn.execute(delete(_ta).where(where))
                if cells:
                    conn.execute(
                        insert(_ta),
                        [
                            {
                                "device": eui,
                                "role": c.role,
                                "key_usage": c.key_usage,
                                "cell_usage": c.cell_usage,
                                "certificate_der": c.certificate_der,
                                "subject_eui": c.subject_eui,
                                "ski": c.ski,
                            }
                            for c in cells
                        ],
                    )
        except IntegrityError as exc:
            if integrity_kind(exc) == "foreign_key":
                raise NotFound(f"no device {eui}") from exc
            raise DuplicateKey(f"device {eui}: two cells with the same slot") from exc
