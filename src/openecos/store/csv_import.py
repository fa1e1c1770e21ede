"""CSV import of registration data, participants and the device inventory.

Theory of operation: all or nothing. Every row is parsed and validated first
(formats, enumerations, duplicates within the file, then conflicts with what
is stored: existing keys, unknown MPIDs, overlapping registrations), inside
the one write transaction that will insert them. If any row is bad nothing is
written and the :class:`ImportResult` lists the row errors (row, column,
reason). Otherwise rows are inserted in batches: ``COPY`` on PostgreSQL,
``executemany`` on SQLite.

File formats (header row required, columns in any order, names case-blind):

- devices: ``eui, device_type, status, mpxn, manufacturer, model,
  firmware_version, credential_state, born_ecos`` (DUIS names for type and
  status; ``TCOS``/``ECOS``; ``true``/``false``; empty mpxn/firmware = none),
  and optionally ``region``: the GSP group of the meter's distribution area
  (``_A`` … ``_P``, :data:`openecos.store.schema.GSP_GROUPS`; empty = none),
  which the migration engine may order starts by.
- registrations: ``mpxn, supplier_mpid, effective_from, effective_to``
  (ISO 8601 with offset, or a date meaning 00:00 UK time; empty
  ``effective_to`` = open).
- participants: ``party_id, party_name, user_id, user_roles, mpid, mpid_role``
  (one row per MPID, or per user with empty MPID columns; ``user_roles``
  separated by ``;``). Parties and users may repeat across rows if they agree.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError

from openecos.eui import Eui64, InvalidEui
from openecos.store import emrr, schema
from openecos.store.csv_reading import (
    RowError,
    RowErrors,
    Source,
    optional,
    parse_bool,
    parse_instant,
    parse_region,
    read_rows,
)
from openecos.store.devices import device_values
from openecos.store.engine import write_transaction
from openecos.store.enums import CosCredentialState, DeviceStatus, DeviceType, UserRole
from openecos.store.errors import InvalidRecord
from openecos.store.facade import Store
from openecos.store.records import Device, Mpid, Party, PartyUser, Registration
from openecos.store.registrations import expected_role, lock_registrations

DEVICE_COLUMNS = (
    "eui",
    "device_type",
    "status",
    "mpxn",
    "manufacturer",
    "model",
    "firmware_version",
    "credential_state",
    "born_ecos",
)
#: Device columns a file may leave out.
DEVICE_OPTIONAL_COLUMNS = ("region",)
REGISTRATION_COLUMNS = ("mpxn", "supplier_mpid", "effective_from", "effective_to")
PARTICIPANT_COLUMNS = ("party_id", "party_name", "user_id", "user_roles", "mpid", "mpid_role")

BATCH = 5000
#: Record fields whose CSV column has another name.
_COLUMN_OF_FIELD = {
    ("Party", "name"): "party_name",
    ("PartyUser", "roles"): "user_roles",
    ("Mpid", "role"): "mpid_role",
}
E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The outcome: rows read, rows written (0 unless every row was good), errors."""

    kind: str
    rows: int
    imported: int
    errors: tuple[RowError, ...]
    error_count: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def rows_per_second(self) -> float:
        return self.imported / self.seconds if self.seconds > 0 else 0.0


class _Row:
    """Parses one row's columns, recording each bad column once."""

    def __init__(self, number: int, values: dict[str, str], errors: RowErrors) -> None:
        self.number, self.values, self.errors = number, values, errors
        self.bad = False

    def field(self, column: str, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(self.values[column])
        except (ValueError, InvalidEui, InvalidRecord) as exc:
            self.fail(column, str(exc))
            return None

    def fail(self, column: str | None, reason: str) -> None:
        self.errors.add(self.number, column, reason)
        self.bad = True

    def build(self, make: Callable[..., T], **fields: Any) -> T | None:
        """``make(**fields)``, unless a column already failed; a refusal names its column."""
        if self.bad:
            return None
        try:
            return make(**fields)
        except InvalidRecord as exc:
            self.fail(_COLUMN_OF_FIELD.get((make.__name__, exc.field), exc.field), exc.reason)
            return None


def _enum(kind: type[E]) -> Callable[[str], E]:
    def parse(value: str) -> E:
        try:
            return kind(value.strip())
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise ValueError(f"{value[:40]!r} is not one of {allowed}") from None

    return parse


def _eui(value: str) -> Eui64:
    return Eui64.parse(value)


def _run(
    kind: str,
    store: Store,
    source: Source,
    columns: tuple[str, ...],
    load: Callable[[Connection, Iterable[tuple[int, dict[str, str]]], RowErrors], int],
    *,
    optional: tuple[str, ...] = (),
) -> ImportResult:
    started = time.perf_counter()
    errors = RowErrors()
    rows = 0

    def counted(it: Iterable[tuple[int, dict[str, str]]]) -> Iterable[tuple[int, dict[str, str]]]:
        nonlocal rows
        for item in it:
            rows += 1
            yield item

    class _Refused(Exception):
        pass

    imported = 0
    try:
        with write_transaction(store.engine) as conn:
            rows_read = read_rows(source, columns, errors, optional_columns=optional)
            imported = load(conn, counted(rows_read), errors)
            if errors:
                raise _Refused
    except _Refused:
        imported = 0
    return ImportResult(
        kind, rows, imported, tuple(errors.kept), errors.count, time.perf_counter() - started
    )


def _existing(conn: Connection, column: Any, keys: Sequence[Any]) -> set[Any]:
    found: set[Any] = set()
    for start in range(0, len(keys), 500):
        found.update(
            conn.execute(select(column).where(column.in_(keys[start : start + 500]))).scalars()
        )
    return found


def _bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Inserts rows with each value converted by its column type's bind processor.

    PostgreSQL: ``COPY ... FROM STDIN``. SQLite: the driver's ``executemany``
    in batches. Both bypass per-row statement compilation, which dominates
    the cost of large imports. A constraint violation raises IntegrityError.
    """
    if not rows:
        return
    names = list(rows[0])
    processors = [table.c[name].type.bind_processor(conn.dialect) or _same for name in names]
    columns = ", ".join(f'"{name}"' for name in names)

    def converted(batch: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
        for row in batch:
            yield tuple(p(row[n]) for p, n in zip(processors, names, strict=True))

    if conn.dialect.name == "postgresql":
        import psycopg

        statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(statement) as copy:
                for values in converted(rows):
                    copy.write_row(values)
        except psycopg.IntegrityError as exc:  # the raw cursor bypasses SQLAlchemy's wrapping
            raise IntegrityError(statement, None, exc) from exc
        return
    marks = ", ".join("?" for _ in names)
    sql = f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})'
    for start in range(0, len(rows), BATCH):
        conn.exec_driver_sql(sql, list(converted(rows[start : start + BATCH])))


def _same(value: Any) -> Any:
    return value


# --- devices -------------------------------------------------------------------


def import_devices(store: Store, source: Source) -> ImportResult:
    """Imports a device inventory CSV, all or nothing."""
    return _run(
        "devices", store, source, DEVICE_COLUMNS, _load_devices, optional=DEVICE_OPTIONAL_COLUMNS
    )


def _load_devices(
    conn: Connection, rows: Iterable[tuple[int, dict[str, str]]], errors: RowErrors
) -> int:
    devices: list[Device] = []
    row_of: dict[Eui64, int] = {}
    for number, values in rows:
        r = _Row(number, values, errors)
        eui = r.field("eui", _eui)
        region = r.field("region", parse_region)
        device_type = r.field("device_type", _enum(DeviceType))
        status = r.field("status", _enum(DeviceStatus))
        state = r.field("credential_state", _enum(CosCredentialState))
        born = r.field("born_ecos", parse_bool)
        device = r.build(
            Device,
            eui=eui,
            device_type=device_type,
            status=status,
            mpxn=optional(values["mpxn"]),
            manufacturer=values["manufacturer"].strip(),
            model=values["model"].strip(),
            firmware_version=optional(values["firmware_version"]),
            credential_state=state,
            born_ecos=born,
            region=region,
        )
        if device is None:
            continue
        if device.eui in row_of:
            r.fail("eui", f"duplicate of row {row_of[device.eui]}")
            continue
        row_of[device.eui] = number
        devices.append(device)
    if errors:
        return 0
    try:
        # Optimistic: insert, and only look for the clashing rows if the database refuses.
        with conn.begin_nested():
            _bulk_insert(
                conn,
                schema.devices,
                [device_values(d) for d in devices],
            )
    except IntegrityError:
        for eui in sorted(_existing(conn, schema.devices.c.eui, list(row_of))):
            errors.add(row_of[eui], "eui", f"device {eui} already exists")
        if not errors:
            raise
        return 0
    return len(devices)


# --- registrations ---------------------------------------------------------------


def import_registrations(store: Store, source: Source) -> ImportResult:
    """Imports registration data, all or nothing, refusing any overlap."""
    return _run("registrations", store, source, REGISTRATION_COLUMNS, _load_registrations)


def _load_registrations(
    conn: Connection, rows: Iterable[tuple[int, dict[str, str]]], errors: RowErrors
) -> int:
    lock_registrations(conn)
    items: list[tuple[int, Registration]] = []
    for number, values in rows:
        r = _Row(number, values, errors)
        start = r.field("effective_from", parse_instant)
        end_text = values["effective_to"].strip()
        end = r.field("effective_to", parse_instant) if end_text else None
        registration = r.build(
            Registration,
            mpxn=values["mpxn"].strip(),
            supplier_mpid=values["supplier_mpid"].strip(),
            effective_from=start,
            effective_to=end,
        )
        if registration is not None:
            items.append((number, registration))
    if errors:
        return 0
    m = schema.mpids
    wanted = sorted({reg.supplier_mpid for _, reg in items})
    roles: dict[str, UserRole] = {}
    for start_at in range(0, len(wanted), 500):
        chunk = wanted[start_at : start_at + 500]
        for mpid, role in conn.execute(select(m.c.mpid, m.c.role).where(m.c.mpid.in_(chunk))):
            roles[mpid] = role
    for number, reg in items:
        role = roles.get(reg.supplier_mpid)
        if role is None:
            errors.add(number, "supplier_mpid", f"unknown MPID {reg.supplier_mpid}")
        elif role is not expected_role(reg.mpxn):
            need = expected_role(reg.mpxn).value
            errors.add(
                number, "supplier_mpid", f"MPID role is {role.value}, {reg.mpxn} needs {need}"
            )
    _check_overlaps(conn, items, errors)
    if errors:
        return 0
    _bulk_insert(
        conn,
        schema.registrations,
        [
            {
                "mpxn": reg.mpxn,
                "supplier_mpid": reg.supplier_mpid,
                "effective_from": reg.effective_from,
                "effective_to": reg.effective_to,
            }
            for _, reg in items
        ],
    )
    emrr.registrations_changed(conn, (reg.mpxn for _, reg in items))
    return len(items)


def _check_overlaps(
    conn: Connection, items: list[tuple[int, Registration]], errors: RowErrors
) -> None:
    reg = schema.registrations
    by_mpxn: dict[str, list[tuple[datetime, datetime | None, int | None]]] = {}
    for number, r in items:
        by_mpxn.setdefault(r.mpxn, []).append((r.effective_from, r.effective_to, number))
    keys = sorted(by_mpxn)
    for start in range(0, len(keys), 500):
        stored = conn.execute(
            select(reg.c.mpxn, reg.c.effective_from, reg.c.effective_to).where(
                reg.c.mpxn.in_(keys[start : start + 500])
            )
        )
        for stored_row in stored:
            by_mpxn[stored_row.mpxn].append(
                (stored_row.effective_from, stored_row.effective_to, None)
            )
    for mpxn, intervals in by_mpxn.items():
        intervals.sort(key=lambda i: i[0])
        for (_, prev_end, prev_row), (start_at, _, row) in itertools.pairwise(intervals):
            if prev_end is None or prev_end > start_at:
                culprit = row if row is not None else prev_row
                other = "a stored registration" if None in (row, prev_row) else f"row {prev_row}"
                errors.add(culprit or 0, "effective_from", f"{mpxn}: overlaps {other}")


# --- participants --------------------------------------------------------------


def import_participants(store: Store, source: Source) -> ImportResult:
    """Imports parties, their user IDs (with roles) and MPIDs, all or nothing."""
    return _run("participants", store, source, PARTICIPANT_COLUMNS, _load_participants)


def _roles(value: str) -> frozenset[UserRole]:
    parse = _enum(UserRole)
    return frozenset(parse(part) for part in value.replace(",", ";").split(";") if part.strip())


def _load_participants(
    conn: Connection, rows: Iterable[tuple[int, dict[str, str]]], errors: RowErrors
) -> int:
    parties: dict[str, tuple[Party, int]] = {}
    users: dict[Eui64, tuple[PartyUser, int]] = {}
    mpids: dict[str, tuple[Mpid, int]] = {}
    for number, values in rows:
        r = _Row(number, values, errors)
        user_id = r.field("user_id", _eui)
        roles = r.field("user_roles", _roles)
        party_id = values["party_id"].strip()
        party = r.build(Party, party_id=party_id, name=values["party_name"].strip())
        user = r.build(PartyUser, user_id=user_id, party_id=party_id, roles=roles)
        mpid_text, role_text = optional(values["mpid"]), optional(values["mpid_role"])
        mpid = None
        if (mpid_text is None) != (role_text is None):
            r.fail("mpid_role", "mpid and mpid_role go together")
        elif mpid_text is not None and user is not None:
            role = r.field("mpid_role", _enum(UserRole))
            mpid = r.build(Mpid, mpid=mpid_text, party_id=party_id, user_id=user.user_id, role=role)
            if mpid is not None and mpid.role not in user.roles:
                r.fail("mpid_role", f"user {user.user_id} does not hold role {mpid.role.value}")
        if r.bad or party is None or user is None:
            continue
        known_party = parties.setdefault(party.party_id, (party, number))
        if known_party[0] != party:
            r.fail("party_name", f"differs from row {known_party[1]}")
        known_user = users.setdefault(user.user_id, (user, number))
        if known_user[0] != user:
            r.fail("user_id", f"party or roles differ from row {known_user[1]}")
        if mpid is not None:
            known_mpid = mpids.setdefault(mpid.mpid, (mpid, number))
            if known_mpid[1] != number:
                r.fail("mpid", f"duplicate of row {known_mpid[1]}")
    if errors:
        return 0
    _refuse_stored(
        conn, schema.parties.c.party_id, {k: n for k, (_, n) in parties.items()}, "party_id", errors
    )
    _refuse_stored(
        conn, schema.party_users.c.user_id, {k: n for k, (_, n) in users.items()}, "user_id", errors
    )
    _refuse_stored(conn, schema.mpids.c.mpid, {k: n for k, (_, n) in mpids.items()}, "mpid", errors)
    if errors:
        return 0
    _bulk_insert(
        conn,
        schema.parties,
        [{"party_id": p.party_id, "name": p.name} for p, _ in parties.values()],
    )
    _bulk_insert(
        conn,
        schema.party_users,
        [{"user_id": u.user_id, "party_id": u.party_id} for u, _ in users.values()],
    )
    _bulk_insert(
        conn,
        schema.party_user_roles,
        [
            {"user_id": u.user_id, "role": role}
            for u, _ in users.values()
            for role in sorted(u.roles)
        ],
    )
    _bulk_insert(
        conn,
        schema.mpids,
        [
            {"mpid": m.mpid, "party_id": m.party_id, "user_id": m.user_id, "role": m.role}
            for m, _ in mpids.values()
        ],
    )
    return len(parties) + len(users) + len(mpids)


def _refuse_stored(
    conn: Connection, column: Any, rows: dict[Any, int], name: str, errors: RowErrors
) -> None:
    for key in sorted(_existing(conn, column, list(rows))):
        errors.add(rows[key], name, f"{key} already exists")
