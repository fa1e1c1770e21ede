"""EMRR figures of the migration engine's table, and the inventory devices it has not enrolled.

Theory of operation. :func:`openecos.migration.report_from_counts` takes two
aggregates of ``migration_meters``: meters by (supplier, status, ineligible
reason) and confirmed migrations by (supplier, day). The supplier is the
*party* registered for the meter's MPxN now, so a party with several MPIDs
gets one report ("split suppliers", docs/ecos-domain.md §S).

:func:`report_rows` is what the desk, the CLI and the HTTP API read:

- PostgreSQL: the counters of :mod:`openecos.store.emrr` (a few hundred rows
  whatever the estate), after :func:`openecos.store.emrr.sync_attribution`
  has brought each meter's supplier to ``now`` in the same transaction (the
  registrations written since the last sync, and those that began or ended
  since). One ``SELECT`` reads both aggregates, so they agree with each other.
- SQLite (the sandbox, one process): :func:`recount_rows`, an exact recount
  that joins the registrations covering ``now``. SQLite has only row-level
  triggers; a ledger row per changed meter would slow every engine write for
  a figure a small estate recounts in milliseconds.

:func:`recount_rows` is, in SQL::

    SELECT m.party_id AS supplier, mm.status, mm.ineligible, count(*)
    FROM migration_meters mm JOIN devices d ON d.eui = mm.device
    LEFT JOIN registrations r ON r.mpxn = d.mpxn AND r.effective_from <= :now
         AND (r.effective_to IS NULL OR r.effective_to > :now)
    LEFT JOIN mpids m ON m.mpid = r.supplier_mpid
    GROUP BY 1, 2, 3

(``status`` 'MIGRATED' rows grouped by ``since``'s UTC date give the daily
series); tests compare the counters with it after real engine runs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from openecos.eui import Eui64
from openecos.migration.eligibility import IneligibleReason
from openecos.migration.emrr import CountRow, DailyRow
from openecos.migration.record import MigrationStatus
from openecos.store import emrr, schema
from openecos.store._base import Executor
from openecos.store.records import utc

_mm, _d = schema.migration_meters, schema.devices
_reg, _mp = schema.registrations, schema.mpids


def report_rows(db: Executor, now: datetime) -> tuple[list[CountRow], list[DailyRow]]:
    """The EMRR aggregates at ``now``, every supplier (see the module docstring)."""
    when = utc("now", now)
    if db.dialect != "postgresql":
        return recount_rows(db, when)
    with db.write() as conn:
        emrr.sync_attribution(conn, when)
        return emrr.emrr_rows(conn)


def sync_attribution(db: Executor, now: datetime) -> int:
    """Brings every meter's EMRR supplier to ``now`` (the engine's periodic upkeep)."""
    with db.write() as conn:
        return emrr.sync_attribution(conn, utc("now", now))


def recount_rows(db: Executor, now: datetime) -> tuple[list[CountRow], list[DailyRow]]:
    """The EMRR aggregates by a full scan, suppliers from the registrations at ``now``."""
    when = utc("now", now)
    with db.read() as conn:
        return _count_rows(conn, when), _daily_rows(conn, when)


def _count_rows(conn: Connection, now: datetime) -> list[CountRow]:
    supplier = _supplier_join(now)
    query = (
        select(supplier.c.party_id, _mm.c.status, _mm.c.ineligible, func.count())
        .select_from(_mm.join(supplier, supplier.c.eui == _mm.c.device, isouter=True))
        .group_by(supplier.c.party_id, _mm.c.status, _mm.c.ineligible)
    )
    return [
        CountRow(
            r[0],
            MigrationStatus[r[1]],
            None if r[2] is None else IneligibleReason[r[2]],
            int(r[3]),
        )
        for r in conn.execute(query).all()
    ]


def _daily_rows(conn: Connection, now: datetime) -> list[DailyRow]:
    supplier = _supplier_join(now)
    day = (
        func.date(_mm.c.since)
        if conn.dialect.name == "sqlite"
        else func.date(func.timezone("UTC", _mm.c.since))
    )
    query = (
        select(supplier.c.party_id, day, func.count())
        .select_from(_mm.join(supplier, supplier.c.eui == _mm.c.device, isouter=True))
        .where(_mm.c.status == MigrationStatus.MIGRATED.name)
        .group_by(supplier.c.party_id, day)
    )
    return [DailyRow(r[0], _as_date(r[1]), int(r[2])) for r in conn.execute(query).all()]


def _supplier_join(now: datetime) -> Any:
    return (
        select(_d.c.eui, _mp.c.party_id)
        .select_from(
            _d.join(
                _reg,
                and_(
                    _reg.c.mpxn == _d.c.mpxn,
                    _reg.c.effective_from <= now,
                    or_(_reg.c.effective_to.is_(None), _reg.c.effective_to > now),
                ),
                isouter=True,
            ).join(_mp, _mp.c.mpid == _reg.c.supplier_mpid, isouter=True)
        )
        .subquery("supplier")
    )


def unassessed(db: Executor, *, after: Eui64 | None, limit: int) -> list[Any]:
    """Inventory devices with no migration row, in EUI order after ``after`` (a full scan:
    tests and repairs; the engine enrols from the queue, :mod:`openecos.store.enrolment`)."""
    query = (
        select(_d)
        .select_from(_d.join(_mm, _mm.c.device == _d.c.eui, isouter=True))
        .where(_mm.c.device.is_(None))
        .order_by(_d.c.eui)
        .limit(limit)
    )
    if after is not None:
        query = query.where(_d.c.eui > after)
    with db.read() as conn:
        return list(conn.execute(query).all())


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


__all__ = ["recount_rows", "report_rows", "sync_attribution", "unassessed"]
