"""The simulated meter estate's durable state: meter blobs, their certificates, their outputs.

Theory of operation. The sandbox's meters are simulated (``openecos.device``)
but their memory must outlive a service process and be shared by every
process on one database, as a real meter's is. Each meter is one row holding
an opaque state blob (the service's codec writes it; the store never reads
inside), the time its held future-dated command falls due, and whether it is
broken. Certificates the blobs refer to are stored once by SHA-256, because a
fleet holds the same few certificates millions of times.

What a meter sends (responses, alerts) is recorded in ``sim_meter_outputs``
in the same transaction as the meter's new state, so a crash can never leave
a meter changed with its answer lost. Consumers take outputs with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL inside their own transaction
(:meth:`SimulatedEstateRepository.next_output`), consume them with
:meth:`SimulatedEstateRepository.consume_output`, and commit that together
with what they did about the output: exactly-once processing across
processes.

A meter's row is locked (``FOR UPDATE``) for the length of the caller's
transaction by :meth:`SimulatedEstateRepository.lock`, so two processes
delivering to one meter serialise on it (SQLite: ``BEGIN IMMEDIATE`` already
serialises every writer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

from sqlalchemy import JSON, Connection, Row, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openecos.eui import Eui64
from openecos.store import schema
from openecos.store._base import Repository
from openecos.store.errors import InvalidRecord, NotFound
from openecos.store.records import u64, utc

_m, _c, _o = schema.sim_meters, schema.sim_certificates, schema.sim_meter_outputs


@dataclass(frozen=True, slots=True)
class SimulatedMeterRow:
    """One simulated meter as stored: its state blob and scheduling facts."""

    device: Eui64
    state: bytes
    due_at: datetime | None
    broken: bool


@dataclass(frozen=True, slots=True)
class SimulatedOutput:
    """A message a simulated meter sent, waiting for the CoS side to process it."""

    output_id: int
    device: Eui64
    kind: str
    recipient: Eui64
    originator_counter: int
    message: bytes
    created_at: datetime


def _meter(row: Row[Any]) -> SimulatedMeterRow:
    return SimulatedMeterRow(row.device, bytes(row.state), row.due_at, bool(row.broken))


def _output(row: Row[Any]) -> SimulatedOutput:
    return SimulatedOutput(
        output_id=int(row.output_id),
        device=row.device,
        kind=row.kind,
        recipient=row.recipient,
        originator_counter=int(row.originator_counter),
        message=bytes(row.message),
        created_at=row.created_at,
    )


def _insert_ignoring_duplicates(conn: Any, table: Any, values: dict[str, Any], key: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    )


def unnest_rows(
    conn: Connection, table: Any, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    """``unnest(...) AS u(columns)`` over ``rows`` as one typed array per column (PostgreSQL).

    Each value goes through its column's bind processing (EUI hex, biased counters,
    enum values), so the arrays hold what a row-by-row statement would have sent;
    JSON columns are serialised here and cast (``jsonb[]``).
    """
    dialect = conn.dialect
    arrays: list[str] = []
    params: dict[str, Any] = {}
    for name in columns:
        column_type = table.c[name].type
        values = [row[name] for row in rows]
        sql_type = column_type.compile(dialect=dialect)
        if isinstance(column_type, JSON):
            values = [json.dumps(v, allow_nan=False) for v in values]
            sql_type = "JSONB"
        else:
            process = column_type.bind_processor(dialect)
            if process is not None:
                values = [process(v) for v in values]
        params[f"u_{name}"] = values
        # Binary parameters (%b): a text array literal escapes every byte of every
        # element, which for a batch of commands' bytea costs tens of milliseconds.
        arrays.append(f"%(u_{name})b::{sql_type}[]")
    return f"unnest({', '.join(arrays)}) AS u({', '.join(columns)})", params


class SimulatedEstateRepository(Repository):
    """Meter state blobs, shared certificates and meter outputs of the simulated estate."""

    __slots__ = ()

    # -- certificates -------------------------------------------------------------------------

    def put_certificate(self, der: bytes) -> bytes:
        """Stores ``der`` once; returns its SHA-256 fingerprint."""
        if not isinstance(der, bytes) or not der:
            raise InvalidRecord("der", "expected non-empty bytes")
        fingerprint = sha256(der).digest()
        with self._db.write() as conn:
            _insert_ignoring_duplicates(
                conn, _c, {"fingerprint": fingerprint, "der": der}, "fingerprint"
            )
        return fingerprint

    def certificate(self, fingerprint: bytes) -> bytes:
        with self._db.read() as conn:
            der = conn.execute(select(_c.c.der).where(_c.c.fingerprint == fingerprint)).scalar()
        if der is None:
            raise NotFound(f"no simulated-estate certificate {fingerprint.hex()}")
        return bytes(der)

    # -- meters -------------------------------------------------------------------------------

    def lock(self, device: Eui64) -> SimulatedMeterRow | None:
        """The meter's row, locked until the caller's transaction ends; None if absent.

        Call inside ``Store.transaction()``; on its own it only reads.
        """
        with self._db.read() as conn:
            query = select(_m).where(_m.c.device == device)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
        return None if row is None else _meter(row)

    def get(self, device: Eui64) -> SimulatedMeterRow | None:
        with self._db.read() as conn:
            row = conn.execute(select(_m).where(_m.c.device == device)).first()
        return None if row is None else _meter(row)

    def create(
        self, device: Eui64, state: bytes, *, at: datetime, due_at: datetime | None = None
    ) -> bool:
        """Adds a meter unless it exists; returns whether this call added it."""
        values = {
            "device": device,
            "state": state,
            "due_at": None if due_at is None else utc("due_at", due_at),
            "broken": False,
            "updated_at": utc("at", at),
        }
        with self._db.write() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            done = conn.execute(
                dialect.insert(_m)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["device"])
                .returning(_m.c.device)
            ).first()
        return done is not None

    def save(
        self,
        device: Eui64,
        state: bytes,
        *,
        at: datetime,
        due_at: datetime | None,
        broken: bool = False,
    ) -> None:
        with self._db.write() as conn:
            done = conn.execute(
                update(_m)
                .where(_m.c.device == device)
                .values(
                    state=state,
                    due_at=None if due_at is None else utc("due_at", due_at),
                    broken=broken,
                    updated_at=utc("at", at),
                )
            )
        if done.rowcount != 1:
            raise NotFound(f"no simulated meter {device}")

    def due(self, now: datetime, *, limit: int = 100) -> list[Eui64]:
        """Meters holding a future-dated command due at ``now``, earliest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(_m.c.device)
                .where(_m.c.due_at.is_not(None), _m.c.due_at <= utc("now", now))
                .order_by(_m.c.due_at)
                .limit(limit)
            )
            return [row.device for row in rows]

    # -- outputs ------------------------------------------------------------------------------

    def add_output(
        self,
        *,
        device: Eui64,
        kind: str,
        recipient: Eui64,
        originator_counter: int,
        message: bytes,
        at: datetime,
    ) -> int:
        with self._db.write() as conn:
            return int(
                conn.execute(
                    insert(_o)
                    .values(
                        device=device,
                        kind=kind,
                        recipient=recipient,
                        originator_counter=u64("originator_counter", originator_counter),
                        message=message,
                        created_at=utc("at", at),
                    )
                    .returning(_o.c.output_id)
                ).scalar_one()
            )

    def add_outputs(
        self, outputs: Sequence[tuple[Eui64, str, Eui64, int, bytes]], *, at: datetime
    ) -> None:
        """Records many outputs ``(device, kind, recipient, counter, message)`` with one
        statement (a fleet answering a batch of commands at once)."""
        if not outputs:
            return
        when = utc("at", at)
        rows = [
            {
                "device": device,
                "kind": kind,
                "recipient": recipient,
                "originator_counter": u64("originator_counter", counter),
                "message": message,
                "created_at": when,
            }
            for device, kind, recipient, counter, message in outputs
        ]
        with self._db.write() as conn:
            if conn.dialect.name == "postgresql":  # one statement, binary arrays
                columns = list(rows[0])
                source, params = unnest_rows(conn, _o, rows, columns)
                names = ", ".join(columns)
                conn.exec_driver_sql(
                    f"INSERT INTO sim_meter_outputs ({names}) SELECT {names} FROM {source}", params
                )
            else:
                conn.execute(insert(_o), rows)

    def next_output(self) -> SimulatedOutput | None:
        """The oldest unconsumed output, locked (PostgreSQL: skipping rows others hold).

        Call inside ``Store.transaction()`` and :meth:`consume_output` it there.
        """
        with self._db.read() as conn:
            query = select(_o).where(_o.c.consumed_at.is_(None)).order_by(_o.c.output_id).limit(1)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = conn.execute(query).first()
        return None if row is None else _output(row)

    def consume_output(self, output_id: int, *, at: datetime) -> None:
        with self._db.write() as conn:
            done = conn.execute(
                update(_o)
                .where(_o.c.output_id == output_id, _o.c.consumed_at.is_(None))
                .values(consumed_at=utc("at", at))
            )
        if done.rowcount != 1:
            raise NotFound(f"output {output_id} is unknown or already consumed")

    def outputs(self, device: Eui64) -> list[SimulatedOutput]:
        """Every output of ``device``, consumed or not, oldest first (diagnostics, tests)."""
        with self._db.read() as conn:
            rows = conn.execute(select(_o).where(_o.c.device == device).order_by(_o.c.output_id))
            return [_output(row) for row in rows]
