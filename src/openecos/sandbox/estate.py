"""The simulated meter estate as a CSV file a person can read, and back.

Theory of operation: one row per meter, ``estate/meters.csv``::

    eui, root, recovery, supplier_ds, supplier_ka, supplier_ka_top_up,
    network_operator_ds, network_operator_ka, acb_ds, acb_ka, transitional_cos,
    wan_provider, seq_recovery, seq_supplier, seq_network_operator,
    seq_access_control_broker, seq_transitional_cos, seq_wan_provider,
    seq_supplier_top_up, alert_counter

The cell columns follow ``openecos.device.METER_CELLS`` and name what the
meter holds: a test-PKI entry name (``supplier-a-ds``, ``root``), or
``der:<base64>`` for a certificate the PKI does not have, or nothing for an
empty cell. The seq-number columns follow ``SEQ_NUMBER_ROLES`` and then the
supplier's prepayment top-up seq number. A future-dated command a meter holds
is not written: reading the file back is a reboot, which loses it as
``openecos.device.reboot`` does.

The same cell columns (without the seq numbers) make ``inventory/trust-anchors.csv``,
what the DCC believes each meter holds.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from openecos.device import (
    ACB_DS_CELL,
    ACB_KA_CELL,
    METER_CELLS,
    NETWORK_OPERATOR_DS_CELL,
    NETWORK_OPERATOR_KA_CELL,
    RECOVERY_CELL,
    ROOT_CELL,
    SEQ_NUMBER_ROLES,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    WAN_PROVIDER_CELL,
    MeterProfile,
    MeterState,
    commission_meter,
)
from openecos.eui import Eui64, InvalidEui
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier
from openecos.sandbox.errors import SandboxError
from openecos.smki import CertificateError, SmkiCertificate, TestPki

CELL_COLUMNS: Final[dict[TrustAnchorCellIdentifier, str]] = {
    ROOT_CELL: "root",
    RECOVERY_CELL: "recovery",
    SUPPLIER_DS_CELL: "supplier_ds",
    SUPPLIER_KA_CELL: "supplier_ka",
    SUPPLIER_KA_TOP_UP_CELL: "supplier_ka_top_up",
    NETWORK_OPERATOR_DS_CELL: "network_operator_ds",
    NETWORK_OPERATOR_KA_CELL: "network_operator_ka",
    ACB_DS_CELL: "acb_ds",
    ACB_KA_CELL: "acb_ka",
    TRANSITIONAL_COS_CELL: "transitional_cos",
    WAN_PROVIDER_CELL: "wan_provider",
}
# The file format follows the simulated meter; a new cell there must get a column here.
if tuple(CELL_COLUMNS) != METER_CELLS:
    raise ImportError("openecos.sandbox.estate: CELL_COLUMNS does not match METER_CELLS")

SEQ_COLUMNS: Final[tuple[str, ...]] = (
    *(f"seq_{role.name.lower()}" for role in SEQ_NUMBER_ROLES),
    "seq_supplier_top_up",
)
METER_COLUMNS: Final[tuple[str, ...]] = (
    "eui",
    *CELL_COLUMNS.values(),
    *SEQ_COLUMNS,
    "alert_counter",
)
_DER_PREFIX = "der:"


class CertificateNames:
    """Names certificates by their test-PKI entry, and resolves names back."""

    __slots__ = ("_by_der", "_by_name")

    def __init__(self, pki: TestPki) -> None:
        entries = [e for e in pki.all_entries]
        self._by_der = {e.certificate.der: e.name for e in entries}
        self._by_name = {e.name: e.certificate for e in entries}

    def name(self, der: bytes) -> str:
        known = self._by_der.get(der)
        return known if known is not None else _DER_PREFIX + base64.b64encode(der).decode()

    def certificate(self, text: str, where: str) -> SmkiCertificate | bytes:
        if text.startswith(_DER_PREFIX):
            try:
                return base64.b64decode(text[len(_DER_PREFIX) :], validate=True)
            except (binascii.Error, ValueError):
                raise SandboxError(f"{where}: not base64 after 'der:'") from None
        found = self._by_name.get(text)
        if found is None:
            raise SandboxError(f"{where}: no PKI entry named {text!r}")
        return found


def write_meter_states(path: Path, states: Iterable[MeterState], pki: TestPki) -> int:
    """Writes ``states`` to ``path``; returns how many rows were written."""
    names = CertificateNames(pki)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(METER_COLUMNS)
        for state in states:
            cells = ["" if c is None else names.name(c.der) for c in state.cells]
            writer.writerow([state.device.hex, *cells, *state.seq_numbers, state.alert_counter])
            count += 1
    return count


def read_meter_states(path: Path, pki: TestPki, profile: MeterProfile) -> dict[Eui64, MeterState]:
    """Reads a file written by :func:`write_meter_states`; raises :class:`SandboxError`."""
    names = CertificateNames(pki)
    states: dict[Eui64, MeterState] = {}
    for number, row in _rows(path, METER_COLUMNS):
        where = f"{path} row {number}"
        eui = _eui(row["eui"], where)
        cells: dict[TrustAnchorCellIdentifier, SmkiCertificate | bytes] = {}
        for cell, column in CELL_COLUMNS.items():
            if row[column]:
                cells[cell] = names.certificate(row[column], f"{where} {column}")
        numbers = [_int(row[c], f"{where} {c}") for c in (*SEQ_COLUMNS, "alert_counter")]
        try:
            state = commission_meter(
                eui,
                cells=cells,
                certificates=profile.certificates,
                seq_numbers=dict(zip(SEQ_NUMBER_ROLES, numbers, strict=False)),
                top_up_seq_number=numbers[len(SEQ_NUMBER_ROLES)],
                alert_counter=numbers[-1],
            )
        except CertificateError as exc:
            raise SandboxError(f"{where}: {exc}") from None
        if eui in states:
            raise SandboxError(f"{where}: meter {eui} appears twice")
        states[eui] = state
    return states


def write_cell_table(
    path: Path,
    rows: Iterable[tuple[Eui64, Mapping[TrustAnchorCellIdentifier, bytes]]],
    pki: TestPki,
) -> None:
    """``eui`` plus one column per cell: what the DCC believes each meter holds."""
    names = CertificateNames(pki)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("eui", *CELL_COLUMNS.values()))
        for eui, cells in rows:
            values = [names.name(cells[c]) if c in cells else "" for c in CELL_COLUMNS]
            writer.writerow([eui.hex, *values])


def _rows(path: Path, columns: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxError(f"cannot read {path}: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise SandboxError(f"{path}: the header is not {', '.join(columns)}")
    for number, values in enumerate(reader, start=2):
        if len(values) != len(columns):
            raise SandboxError(
                f"{path} row {number}: {len(values)} fields, {len(columns)} expected"
            )
        yield number, dict(zip(columns, (v.strip() for v in values), strict=True))


def _eui(text: str, where: str) -> Eui64:
    try:
        return Eui64.parse(text)
    except InvalidEui as exc:
        raise SandboxError(f"{where}: {exc}") from None


def _int(text: str, where: str) -> int:
    if not text.isdigit() or len(text) > 20:
        raise SandboxError(f"{where}: {text[:30]!r} is not a non-negative integer")
    return int(text)
