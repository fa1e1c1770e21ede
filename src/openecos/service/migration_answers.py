"""Meters' answers to the migration engine: applied to the lifecycle exactly once.

Theory of operation. A meter answers a 0x0106 (signed, to the TCoS Party)
and a CS02a read (MACed, to the Access Control Broker); the simulated estate
records each answer durably (``sim_meter_outputs``). Each is applied in ONE
transaction that takes the output (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
consumes it, locks the meter's migration row and writes everything that
follows, or nothing:

1. the answer passes the fault plan's return leg (lost, truncated or damaged
   in tests; untouched in production);
2. a 0x0106 answer is classified (:func:`openecos.migration.classify_response`:
   header, the meter's signature with its DS certificate from the inventory,
   outcome) and applied with :func:`openecos.migration.response_received`;
   a CS02a answer is read (:func:`openecos.migration.reading_of`: MAC with the
   ACB KA key, the cell's subject EUI and SKI) and applied with
   :func:`openecos.migration.credentials_read`;
3. the commands move: a confirmed migration → Succeeded; a definitive
   failure → Failed; an outcome in doubt → OutcomeUnknown (still in flight,
   so a 6.23 for the meter keeps waiting until the read decides);
4. only a confirmed outcome (a verified response naming the ECoS
   certificate, or a read showing it) flips the inventory: the device's
   ``CosCredentialState`` to ECOS and its transitionalCoS cell to the ECoS
   certificate (:func:`flip_to_ecos`).

An answer that does not belong to the meter's current attempt (a late answer
to an earlier counter, a duplicate) updates that command's record and the
audit log, never the lifecycle.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.migration import (
    CredentialReading,
    EmehraPolicy,
    MeterMigration,
    MigrationStatus,
    SentMigration,
    classify_response,
    credentials_read,
    reading_of,
    response_received,
)
from openecos.migration.command import MESSAGE_CODE
from openecos.service.migration_delivery import NO_FAULTS, FaultPlan
from openecos.service.migration_identities import MigrationIdentities
from openecos.service.worker import DeviceKeyDirectory
from openecos.store import (
    IN_FLIGHT_COMMAND_STATUSES,
    CommandRecord,
    CommandStatus,
    CosCredentialState,
    NotFound,
    Repositories,
    SimulatedOutput,
    StaleState,
    Store,
)
from openecos.store.migration import MigrationRepository, bound, migration_transaction

ACTOR = "migration"
_S = MigrationStatus
_PENDING = frozenset({_S.IN_FLIGHT, _S.OUTCOME_UNKNOWN, _S.READING_CREDENTIALS})


def flip_to_ecos(tx: Repositories, identities: MigrationIdentities, device: Any) -> None:
    """The inventory after a confirmed migration: ECOS, and the ECoS certificate in the cell."""
    with contextlib.suppress(StaleState):  # already ECOS (a duplicate confirmation)
        tx.devices.set_credential_state(
            device, CosCredentialState.ECOS, expected=CosCredentialState.TCOS
        )
    ecos = identities.credential
    for cell in tx.devices.trust_anchors(device):
        if (
            cell.role is RemotePartyRole.TRANSITIONAL_COS
            and cell.key_usage is KeyUsage.DIGITAL_SIGNATURE
        ):
            tx.devices.set_trust_anchor(
                device,
                replace(
                    cell,
                    certificate_der=ecos.certificate,
                    subject_eui=ecos.identity.subject_unique_id,
                    ski=ecos.identity.subject_key_id,
                ),
            )


def close_command(
    tx: Repositories,
    signer: Any,
    counter: int | None,
    status: CommandStatus,
    at: datetime,
    response: bytes | None = None,
) -> None:
    """Moves a command still in flight to ``status`` (no-op if absent or already final)."""
    if counter is None:
        return
    with contextlib.suppress(StaleState, NotFound):
        tx.commands.transition(
            signer,
            counter,
            expected=IN_FLIGHT_COMMAND_STATUSES,
            status=status,
            at=at,
            response=response,
        )


def command_status_for(record: MeterMigration) -> CommandStatus | None:
    """What the 0x0106 command becomes with the meter in ``record``'s status (None: unchanged)."""
    if record.status is _S.MIGRATED:
        return CommandStatus.SUCCEEDED
    if record.status in (_S.OUTCOME_UNKNOWN, _S.READING_CREDENTIALS):
        return CommandStatus.OUTCOME_UNKNOWN
    if record.status is _S.IN_FLIGHT:
        return None
    # Retry, exception, hold...: the command is over (an unknown outcome goes with the meter's
    # record, whose credential knowledge says so; a 6.23 must not wait on it for ever).
    return CommandStatus.FAILED


def audit_entry(at: datetime, action: str, device: Any, **details: Any) -> dict[str, Any]:
    return {
        "at": at,
        "actor": ACTOR,
        "action": action,
        "subject": device.hex,
        "details": {
            k: (str(v) if not isinstance(v, bool | int | str) else v)
            for k, v in details.items()
            if v is not None
        },
    }


def transition_details(before: MeterMigration, after: MeterMigration) -> dict[str, Any]:
    return {
        "from": before.status.name,
        "to": after.status.name,
        "reason": after.reason.name,
        "error": None if after.error is None else after.error.name,
        "next_at": None if after.next_at is None else after.next_at.isoformat(),
    }


class MigrationAnswers:
    """Applies meters' answers to migration commands (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        identities: MigrationIdentities,
        policy: Callable[[], EmehraPolicy],
        *,
        plan: FaultPlan = NO_FAULTS,
        device_keys: DeviceKeyDirectory | None = None,
    ) -> None:
        self.store = store
        self.identities = identities
        self.policy = policy
        self.plan = plan
        self.device_keys = device_keys or DeviceKeyDirectory(store)

    def handles(self, tx: Repositories, output: SimulatedOutput) -> bool:
        """Whether ``output`` answers a migration command (0x0106 or the CS02a read)."""
        if output.recipient == self.identities.acb:
            return True
        if output.recipient != self.identities.tcos:
            return False
        try:
            command = tx.commands.get(output.recipient, output.originator_counter)
        except NotFound:
            return False
        return command.message_code == MESSAGE_CODE

    def process(self, now: datetime, *, limit: int = 200) -> int:
        """Applies up to ``limit`` waiting answers in one transaction; returns how many."""
        signers = (self.identities.tcos, self.identities.acb)
        with migration_transaction(self.store) as mtx:
            outputs = mtx.mig.next_outputs(signers, limit=limit)
            for output in outputs:
                with mtx.savepoint():
                    mtx.repos.estate.consume_output(output.output_id, at=now)
                    self.apply(mtx.repos, output, now, mig=mtx.mig)
        return len(outputs)

    def apply(
        self,
        tx: Repositories,
        output: SimulatedOutput,
        now: datetime,
        *,
        mig: MigrationRepository | None = None,
    ) -> None:
        """Applies one consumed answer inside the caller's transaction ``tx``."""
        mig = mig or bound(tx)
        try:
            command = tx.commands.get(output.recipient, output.originator_counter)
        except NotFound:
            mig.audit_many([audit_entry(now, "migration.answer-unmatched", output.device)])
            return
        message, fault = self.plan.return_leg(output)
        if message is None:
            mig.audit_many([audit_entry(now, "migration.answer-lost", output.device, fault=fault)])
            return
        record = mig.lock(output.device)
        if command.message_code == MESSAGE_CODE:
            self._command_answer(tx, mig, command, record, message, now)
        else:
            self._read_answer(tx, mig, command, record, message, now)

    # -- 0x0106 ---------------------------------------------------------------------------------

    def _command_answer(
        self,
        tx: Repositories,
        mig: MigrationRepository,
        command: CommandRecord,
        record: MeterMigration | None,
        message: bytes,
        now: datetime,
    ) -> None:
        ids = self.identities
        device = command.device
        verdict = classify_response(
            message,
            sent=SentMigration(device, ids.tcos, command.originator_counter, ids.ecos_identity),
            device_signing_key=self.device_keys.public_key(device, KeyUsage.DIGITAL_SIGNATURE),
        )
        current = (
            record is not None
            and record.status in _PENDING
            and record.command_counter == command.originator_counter
        )
        if not current or record is None:
            # A late answer to an earlier attempt, or a duplicate: record it, change nothing else.
            if verdict.migrated:
                close_command(
                    tx, ids.tcos, command.originator_counter, CommandStatus.SUCCEEDED, now, message
                )
            mig.audit_many(
                [
                    audit_entry(
                        now,
                        "migration.answer-late",
                        device,
                        counter=command.originator_counter,
                        error=None if verdict.error is None else verdict.error.name,
                    )
                ]
            )
            return
        policy = self.policy()
        after = response_received(record, verdict.error, now, policy)
        if after is record:
            mig.audit_many(
                [audit_entry(now, "migration.answer-ignored", device, error=verdict.error)]
            )
            return
        status = command_status_for(after)
        if status is not None:
            close_command(tx, ids.tcos, command.originator_counter, status, now, message)
        if after.status is _S.MIGRATED:
            flip_to_ecos(tx, ids, device)
        mig.save(after)
        mig.audit_many(
            [
                audit_entry(
                    now,
                    "migration.answered",
                    device,
                    counter=command.originator_counter,
                    detail=verdict.detail[:200] or None,
                    **transition_details(record, after),
                )
            ]
        )

    # -- CS02a ----------------------------------------------------------------------------------

    def _read_answer(
        self,
        tx: Repositories,
        mig: MigrationRepository,
        command: CommandRecord,
        record: MeterMigration | None,
        message: bytes,
        now: datetime,
    ) -> None:
        ids = self.identities
        device = command.device
        if (
            record is None
            or record.status is not _S.READING_CREDENTIALS
            or record.read_counter != command.originator_counter
        ):
            close_command(
                tx, ids.acb, command.originator_counter, CommandStatus.FAILED, now, message
            )
            mig.audit_many(
                [
                    audit_entry(
                        now, "migration.read-late", device, counter=command.originator_counter
                    )
                ]
            )
            return
        reading = reading_of(
            message,
            acb=ids.acb,
            device=device,
            originator_counter=command.originator_counter,
            acb_key_agreement=ids.acb_key_agreement,
            device_key_agreement_key=self.device_keys.public_key(device, KeyUsage.KEY_AGREEMENT),
            ecos=ids.ecos_identity,
            tcos=ids.tcos_identity,
        )
        after = credentials_read(record, reading, now, self.policy())
        read_status = (
            CommandStatus.FAILED
            if reading is CredentialReading.UNREADABLE
            else CommandStatus.SUCCEEDED
        )
        close_command(tx, ids.acb, command.originator_counter, read_status, now, message)
        status = command_status_for(after)
        if status is not None:
            close_command(tx, ids.tcos, record.command_counter, status, now)
        if after.status is _S.MIGRATED:
            flip_to_ecos(tx, ids, device)
        mig.save(after)
        mig.audit_many(
            [
                audit_entry(
                    now,
                    "migration.read",
                    device,
                    counter=command.originator_counter,
                    reading=reading.name,
                    **transition_details(record, after),
                )
            ]
        )


__all__ = [
    "ACTOR",
    "MigrationAnswers",
    "audit_entry",
    "close_command",
    "command_status_for",
    "flip_to_ecos",
    "transition_details",
]
