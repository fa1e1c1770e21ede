"""GBCS commands the CoS Party (or the migration engine) sends to devices.

A command is keyed by ``(signer, originator_counter)``: the signer's counter
is reserved once (:mod:`openecos.store.counters`) and the device's response
carries it back, so the key both forbids counter reuse in the database and
matches responses.

Invariant (docs/architecture.md): at most one credential-changing command is
in flight per device. The partial unique index ``uq_commands_in_flight``
(device, where credential-changing and status in
:data:`~openecos.store.enums.IN_FLIGHT_COMMAND_STATUSES`) holds it in the
database, so two workers racing to command one meter cannot both succeed;
the loser gets :class:`~openecos.store.errors.CommandInFlight`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from openecos.eui import Eui64
from openecos.store import schema
from openecos.store._base import Repository, constraint_name, integrity_kind
from openecos.store.enums import IN_FLIGHT_COMMAND_STATUSES, CommandStatus
from openecos.store.errors import (
    CommandInFlight,
    DuplicateKey,
    NotFound,
    ReferenceMissing,
    StaleState,
)
from openecos.store.records import CommandRecord, utc

_cmd = schema.commands


def _command(row: Row[Any]) -> CommandRecord:
    return CommandRecord(
        signer=row.signer,
        originator_counter=row.originator_counter,
        device=row.device,
        message_code=row.message_code,
        payload=bytes(row.payload),
        created_at=row.created_at,
        credential_changing=bool(row.credential_changing),
        request_id=row.request_id,
        status=row.status,
        sent_at=row.sent_at,
        answered_at=row.answered_at,
        response=None if row.response is None else bytes(row.response),
    )


def _command_row(command: CommandRecord) -> dict[str, Any]:
    return {
        "signer": command.signer,
        "originator_counter": command.originator_counter,
        "device": command.device,
        "request_id": command.request_id,
        "message_code": command.message_code,
        "credential_changing": command.credential_changing,
        "payload": command.payload,
        "status": command.status,
        "created_at": command.created_at,
        "sent_at": command.sent_at,
        "answered_at": command.answered_at,
        "response": command.response,
    }


class CommandRepository(Repository):
    """Commands, their status and the device's answer."""

    __slots__ = ()

    def add(self, command: CommandRecord) -> None:
        """Records a command; raises CommandInFlight, DuplicateKey or ReferenceMissing."""
        try:
            with self._db.write() as conn:
                conn.execute(insert(_cmd).values(**_command_row(command)))
        except IntegrityError as exc:
            kind = integrity_kind(exc)
            if kind == "foreign_key":
                raise ReferenceMissing(
                    f"command for unknown device {command.device} or request {command.request_id}"
                ) from exc
            if kind == "unique" and _is_in_flight_violation(exc):
                raise CommandInFlight(
                    f"device {command.device} already has a credential-changing command in flight"
                ) from exc
            raise DuplicateKey(
                f"{command.signer} counter {command.originator_counter} is already used"
            ) from exc

    def add_many(self, commands: Sequence[CommandRecord]) -> None:
        """Records several commands in one statement; any refusal refuses them all.

        Raises what :meth:`add` raises for the first refused row (CommandInFlight,
        DuplicateKey, ReferenceMissing); a caller that must keep the others adds
        them one by one then.
        """
        if not commands:
            return
        try:
            with self._db.write_set() as conn:
                conn.execute(insert(_cmd), [_command_row(c) for c in commands])
        except IntegrityError as exc:
            kind = integrity_kind(exc)
            if kind == "foreign_key":
                raise ReferenceMissing("a command for an unknown device or request") from exc
            if kind == "unique" and _is_in_flight_violation(exc):
                raise CommandInFlight(
                    "a device already has a credential-changing command in flight"
                ) from exc
            raise DuplicateKey("a signer counter is already used") from exc

    def mark_sent_many(self, commands: Sequence[CommandRecord], *, at: datetime) -> int:
        """Prepared commands become Sent, in one statement per signer; returns how many moved.

        A command no longer Prepared (already answered) is left as it is.
        """
        when = utc("at", at)
        by_signer: dict[Eui64, list[int]] = {}
        for command in commands:
            by_signer.setdefault(command.signer, []).append(command.originator_counter)
        moved = 0
        with self._db.write_set() as conn:
            for signer, counters in by_signer.items():
                moved += conn.execute(
                    update(_cmd)
                    .where(
                        _cmd.c.signer == signer,
                        _cmd.c.originator_counter.in_(counters),
                        _cmd.c.status == CommandStatus.PREPARED,
                    )
                    .values(status=CommandStatus.SENT, sent_at=when)
                ).rowcount
        return moved

    def get(self, signer: Eui64, originator_counter: int) -> CommandRecord:
        with self._db.read() as conn:
            row = conn.execute(_by_key(select(_cmd), signer, originator_counter)).first()
        if row is None:
            raise NotFound(f"no command {signer} / {originator_counter}")
        return _command(row)

    def in_flight(self, device: Eui64) -> CommandRecord | None:
        """The credential-changing command in flight for ``device``, if any."""
        with self._db.read() as conn:
            row = conn.execute(
                select(_cmd).where(
                    _cmd.c.device == device,
                    _cmd.c.credential_changing,
                    _cmd.c.status.in_(sorted(IN_FLIGHT_COMMAND_STATUSES)),
                )
            ).first()
        return None if row is None else _command(row)

    def for_request(self, request_id: str) -> list[CommandRecord]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(_cmd).where(_cmd.c.request_id == request_id).order_by(_cmd.c.created_at)
            )
            return [_command(row) for row in rows]

    def find(self, *, status: CommandStatus, limit: int = 1000) -> list[CommandRecord]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(_cmd).where(_cmd.c.status == status).order_by(_cmd.c.created_at).limit(limit)
            )
            return [_command(row) for row in rows]

    def transition(
        self,
        signer: Eui64,
        originator_counter: int,
        *,
        expected: CommandStatus | Collection[CommandStatus],
        status: CommandStatus,
        at: datetime,
        response: bytes | None = None,
    ) -> CommandRecord:
        """Moves a command from ``expected`` to ``status`` (compare-and-set).

        ``at`` is written to ``sent_at`` when the new status is SENT and to
        ``answered_at`` otherwise (an answer, a timeout, a cancellation);
        ``response`` stores the device's response bytes when given.
        """
        allowed = {expected} if isinstance(expected, CommandStatus) else set(expected)
        when = utc("at", at)
        values: dict[str, Any] = {"status": status}
        values["sent_at" if status is CommandStatus.SENT else "answered_at"] = when
        if response is not None:
            values["response"] = response
        try:
            with self._db.write() as conn:
                done = conn.execute(
                    _by_key(update(_cmd), signer, originator_counter)
                    .where(_cmd.c.status.in_(sorted(allowed)))
                    .values(**values)
                )
                row = conn.execute(_by_key(select(_cmd), signer, originator_counter)).first()
        except IntegrityError as exc:  # e.g. moving an old command back in flight
            raise CommandInFlight(f"{exc.orig}") from exc
        if row is None:
            raise NotFound(f"no command {signer} / {originator_counter}")
        if done.rowcount != 1:
            raise StaleState(
                f"command {signer} / {originator_counter} is {row.status.value},"
                f" not in {sorted(allowed)}"
            )
        return _command(row)


def _by_key(statement: Any, signer: Eui64, originator_counter: int) -> Any:
    return statement.where(_cmd.c.signer == signer, _cmd.c.originator_counter == originator_counter)


def _is_in_flight_violation(exc: IntegrityError) -> bool:
    name = constraint_name(exc)
    # PostgreSQL names the index; SQLite names its column ("commands.device").
    return "uq_commands_in_flight" in name or name.rstrip().endswith("commands.device")
