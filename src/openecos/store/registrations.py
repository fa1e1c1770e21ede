"""Registration data: who is the registered supplier of an MPxN, and when.

Theory of operation: each MPxN has a history of half-open intervals
``[effective_from, effective_to)`` with no overlaps; ``effective_to`` NULL is
open-ended. CoS check 1 (ecos-domain.md §H.3) asks "is the requester the
registered supplier of ImportMPxN at the execution date" - that is
:meth:`RegistrationRepository.registered_supplier`.

No-overlap is checked on every write while holding a lock that serialises
writers of registration data: ``SHARE ROW EXCLUSIVE`` on the table on
PostgreSQL (it conflicts with itself and not with readers), ``BEGIN
IMMEDIATE`` on SQLite. Registration feeds are batch updates, so serialising
their writers costs nothing that matters. Every write also notes its MPxNs
for EMRR (:func:`openecos.store.emrr.registrations_changed`, same transaction),
so each meter is reported under the supplier registered for it. An MPAN's supplier MPID must have
market role IS and an MPRN's role GS.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from openecos.store import emrr, schema
from openecos.store._base import Repository
from openecos.store.enums import UserRole
from openecos.store.errors import (
    InvalidRecord,
    OverlappingRegistration,
    ReferenceMissing,
)
from openecos.store.records import (
    RegisteredSupplier,
    Registration,
    is_mpan,
    utc,
    validate_mpxn,
)

_reg, _m = schema.registrations, schema.mpids


def expected_role(mpxn: str) -> UserRole:
    """The market role the supplier of an MPxN holds: IS for an MPAN, GS for an MPRN."""
    return UserRole.IMPORT_SUPPLIER if is_mpan(mpxn) else UserRole.GAS_SUPPLIER


def lock_registrations(conn: Connection) -> None:
    """Serialise writers of registration data (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE registrations IN SHARE ROW EXCLUSIVE MODE")


def _overlapping(mpxn: str, start: datetime, end: datetime | None) -> Any:
    clauses = [_reg.c.mpxn == mpxn, or_(_reg.c.effective_to.is_(None), _reg.c.effective_to > start)]
    if end is not None:
        clauses.append(_reg.c.effective_from < end)
    return and_(*clauses)


def _registration(row: Any) -> Registration:
    return Registration(
        mpxn=row.mpxn,
        supplier_mpid=row.supplier_mpid,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
    )


class RegistrationRepository(Repository):
    """Registered supplier intervals per MPxN."""

    __slots__ = ()

    def add(self, registration: Registration) -> None:
        """Adds an interval; raises OverlappingRegistration, ReferenceMissing, InvalidRecord."""
        self.add_many([registration])

    def add_many(self, registrations: Iterable[Registration]) -> None:
        """Adds intervals atomically (all or none), checking overlaps among them too."""
        items = list(registrations)
        with self._db.write() as conn:
            lock_registrations(conn)
            roles = _mpid_roles(conn, {r.supplier_mpid for r in items})
            for r in items:
                _check_role(r, roles)
                clash = conn.execute(
                    select(_reg.c.effective_from).where(
                        _overlapping(r.mpxn, r.effective_from, r.effective_to)
                    )
                ).first()
                if clash is not None:
                    raise OverlappingRegistration(
                        f"{r.mpxn}: [{r.effective_from}, {r.effective_to}) overlaps the"
                        f" registration from {clash.effective_from}"
                    )
                try:
                    conn.execute(insert(_reg).values(**_values(r)))
                except IntegrityError as exc:  # same (mpxn, effective_from) in this batch
                    raise OverlappingRegistration(f"{r.mpxn}: overlapping intervals") from exc
            emrr.registrations_changed(conn, (r.mpxn for r in items))

    def change_supplier(self, mpxn: str, supplier_mpid: str, effective_from: datetime) -> None:
        """A change of supplier at ``effective_from``: ends the interval covering
        that instant there and opens a new one for ``supplier_mpid``.

        Raises OverlappingRegistration if a registration starts after it.
        """
        validate_mpxn(mpxn)
        start = utc("effective_from", effective_from)
        new = Registration(mpxn=mpxn, supplier_mpid=supplier_mpid, effective_from=start)
        with self._db.write() as conn:
            lock_registrations(conn)
            _check_role(new, _mpid_roles(conn, {supplier_mpid}))
            later = conn.execute(
                select(_reg.c.effective_from).where(
                    _reg.c.mpxn == mpxn, _reg.c.effective_from >= start
                )
            ).first()
            if later is not None:
                raise OverlappingRegistration(
                    f"{mpxn}: a registration starts at {later.effective_from}, not before"
                )
            conn.execute(
                update(_reg).where(_overlapping(mpxn, start, None)).values(effective_to=start)
            )
            conn.execute(insert(_reg).values(**_values(new)))
            emrr.registrations_changed(conn, [mpxn])

    def at(self, mpxn: str, instant: datetime) -> Registration | None:
        """The registration covering ``instant`` (half-open), or None."""
        when = utc("instant", instant)
        with self._db.read() as conn:
            row = conn.execute(_covering(mpxn, when)).first()
        return None if row is None else _registration(row)

    def registered_supplier(self, mpxn: str, instant: datetime) -> RegisteredSupplier | None:
        """Who supplies ``mpxn`` at ``instant``: the MPID's user ID and party, or None."""
        when = utc("instant", instant)
        query = (
            _covering(mpxn, when)
            .add_columns(_m.c.user_id, _m.c.party_id, _m.c.role)
            .join(_m, _m.c.mpid == _reg.c.supplier_mpid)
        )
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return RegisteredSupplier(
            registration=_registration(row),
            user_id=row.user_id,
            party_id=row.party_id,
            role=row.role,
        )

    def history(self, mpxn: str) -> list[Registration]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(_reg).where(_reg.c.mpxn == mpxn).order_by(_reg.c.effective_from)
            )
            return [_registration(r) for r in rows]


def _covering(mpxn: str, when: datetime) -> Any:
    return select(_reg).where(
        _reg.c.mpxn == mpxn,
        _reg.c.effective_from <= when,
        or_(_reg.c.effective_to.is_(None), _reg.c.effective_to > when),
    )


def _values(r: Registration) -> dict[str, Any]:
    return {
        "mpxn": r.mpxn,
        "supplier_mpid": r.supplier_mpid,
        "effective_from": r.effective_from,
        "effective_to": r.effective_to,
    }


def _mpid_roles(conn: Connection, mpids: set[str]) -> dict[str, UserRole]:
    if not mpids:
        return {}
    rows = conn.execute(select(_m.c.mpid, _m.c.role).where(_m.c.mpid.in_(sorted(mpids))))
    return {row.mpid: row.role for row in rows}


def _check_role(r: Registration, roles: dict[str, UserRole]) -> None:
    role = roles.get(r.supplier_mpid)
    if role is None:
        raise ReferenceMissing(f"unknown MPID {r.supplier_mpid!r}")
    if role is not expected_role(r.mpxn):
        raise InvalidRecord(
            "supplier_mpid",
            f"MPID {r.supplier_mpid} has role {role.value}; {r.mpxn} needs"
            f" {expected_role(r.mpxn).value}",
        )
