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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from openecos.eui import Eui64
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
from openecos.service.migration_keys import MigrationDeviceKeys, prefetch_keys
from openecos.service.worker import DeviceKeyDirectory
from openecos.store import (
    IN_FLIGHT_COMMAND_STATUSES,
    CommandStatus,
    CosCredentialState,
    NotFound,
    Repositories,
    SimulatedOutput,
    StaleState,
    Store,
)
from openecos.store.migration import (
    MigrationRepository,
    SentCommand,
    bound,
    migration_transaction,
)

ACTOR = "migration"
#: A command to close: (signer, originator counter, new status, the answer's bytes or None).
CommandChange = tuple[Eui64, int, CommandStatus, bytes | None]
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


@dataclass(slots=True)
class AnswerEffect:
    """Everything one answer changes, decided before anything is written.

    ``record``: the meter's new migration record (None: unchanged);
    ``commands``: (signer, counter, new status, response bytes) of commands to close;
    ``flip``: the device whose inventory becomes ECoS; ``audit``: the audit entry.
    """

    record: MeterMigration | None = None
    commands: list[CommandChange] = field(default_factory=list)
    flip: Eui64 | None = None
    audit: dict[str, Any] | None = None


class MigrationAnswers:
    """Applies meters' answers to migration commands (see the module docstring).

    :meth:`process` takes a batch of answers in one transaction: it reads the
    commands and locks the meters' rows for the whole batch, decides each
    answer's :class:`AnswerEffect` (pure, bar the device key lookups), and
    writes all effects with a few set-wise statements
    (:meth:`~openecos.store.migration.MigrationRepository.apply_effects`).
    :meth:`apply` does the same for one answer inside a caller's transaction
    (the service's response processor).
    """

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
        self.device_keys = device_keys or MigrationDeviceKeys(store)

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

    def process(self, now: datetime, *, limit: int = 256) -> int:
        """Applies up to ``limit`` waiting answers in one transaction; returns how many."""
        signers = (self.identities.tcos, self.identities.acb)
        with migration_transaction(self.store) as mtx:
            outputs = mtx.mig.next_outputs(signers, limit=limit)
            if not outputs:
                return 0
            commands = mtx.mig.commands_by_key(
                [(o.recipient, o.originator_counter) for o in outputs]
            )
            records = mtx.mig.lock_many(sorted({o.device for o in outputs}))
            prefetch_keys(self.device_keys, records)
            policy = self.policy()  # once a batch: building it is not free
            effects = []
            for output in outputs:
                effect = self._effect(
                    commands.get((output.recipient, output.originator_counter)),
                    records.get(output.device),
                    output,
                    now,
                    policy,
                )
                if effect.record is not None:
                    records[output.device] = effect.record  # a second answer sees the first
                effects.append(effect)
            self._write(mtx.mig, effects, [o.output_id for o in outputs], now)
        return len(outputs)

    def apply(
        self,
        tx: Repositories,
        output: SimulatedOutput,
        now: datetime,
        *,
        mig: MigrationRepository | None = None,
    ) -> None:
        """Applies one answer, already consumed, inside the caller's transaction ``tx``."""
        mig = mig or bound(tx)
        key = (output.recipient, output.originator_counter)
        command = mig.commands_by_key([key]).get(key)
        record = mig.lock_many([output.device]).get(output.device)
        self._write(mig, [self._effect(command, record, output, now, self.policy())], [], now)

    def _write(
        self,
        mig: MigrationRepository,
        effects: list[AnswerEffect],
        consumed: list[int],
        now: datetime,
    ) -> None:
        ecos = self.identities.credential
        mig.apply_effects(
            records=[e.record for e in effects if e.record is not None],
            commands=[c for e in effects for c in e.commands],
            flips=[e.flip for e in effects if e.flip is not None],
            ecos_certificate=ecos.certificate,
            ecos_subject=ecos.identity.subject_unique_id,
            ecos_ski=ecos.identity.subject_key_id,
            audit=[e.audit for e in effects if e.audit is not None],
            consumed=consumed,
            at=now,
        )

    def _effect(
        self,
        command: SentCommand | None,
        record: MeterMigration | None,
        output: SimulatedOutput,
        now: datetime,
        policy: EmehraPolicy,
    ) -> AnswerEffect:
        if command is None:
            return AnswerEffect(audit=audit_entry(now, "migration.answer-unmatched", output.device))
        message, fault = self.plan.return_leg(output)
        if message is None:
            return AnswerEffect(
                audit=audit_entry(now, "migration.answer-lost", output.device, fault=fault)
            )
        if command.message_code == MESSAGE_CODE:
            return self._command_answer(command, record, message, now, policy)
        return self._read_answer(command, record, message, now, policy)

    # -- 0x0106 ---------------------------------------------------------------------------------

    def _command_answer(
        self,
        command: SentCommand,
        record: MeterMigration | None,
        message: bytes,
        now: datetime,
        policy: EmehraPolicy,
    ) -> AnswerEffect:
        ids = self.identities
        device = command.device
        counter = command.originator_counter
        verdict = classify_response(
            message,
            sent=SentMigration(device, ids.tcos, counter, ids.ecos_identity),
            device_signing_key=self.device_keys.public_key(device, KeyUsage.DIGITAL_SIGNATURE),
        )
        error = None if verdict.error is None else verdict.error.name
        if record is None or record.status not in _PENDING or record.command_counter != counter:
            # A late answer to an earlier attempt, or a duplicate: record it, change nothing else.
            closes: list[CommandChange] = []
            if verdict.migrated:
                closes.append((ids.tcos, counter, CommandStatus.SUCCEEDED, message))
            return AnswerEffect(
                commands=closes,
                audit=audit_entry(
                    now, "migration.answer-late", device, counter=counter, error=error
                ),
            )
        after = response_received(record, verdict.error, now, policy)
        if after is record:
            return AnswerEffect(
                audit=audit_entry(now, "migration.answer-ignored", device, error=error)
            )
        status = command_status_for(after)
        return AnswerEffect(
            record=after,
            commands=[] if status is None else [(ids.tcos, counter, status, message)],
            flip=device if after.status is _S.MIGRATED else None,
            audit=audit_entry(
                now,
                "migration.answered",
                device,
                counter=counter,
                detail=verdict.detail[:200] or None,
                **transition_details(record, after),
            ),
        )

    # -- CS02a ----------------------------------------------------------------------------------

    def _read_answer(
        self,
        command: SentCommand,
        record: MeterMigration | None,
        message: bytes,
        now: datetime,
        policy: EmehraPolicy,
    ) -> AnswerEffect:
        ids = self.identities
        device = command.device
        counter = command.originator_counter
        if (
            record is None
            or record.status is not _S.READING_CREDENTIALS
            or record.read_counter != counter
        ):
            return AnswerEffect(
                commands=[(ids.acb, counter, CommandStatus.FAILED, message)],
                audit=audit_entry(now, "migration.read-late", device, counter=counter),
            )
        reading = reading_of(
            message,
            acb=ids.acb,
            device=device,
            originator_counter=counter,
            acb_key_agreement=ids.acb_key_agreement,
            device_key_agreement_key=self.device_keys.public_key(device, KeyUsage.KEY_AGREEMENT),
            ecos=ids.ecos_identity,
            tcos=ids.tcos_identity,
        )
        after = credentials_read(record, reading, now, policy)
        read_status = (
            CommandStatus.FAILED
            if reading is CredentialReading.UNREADABLE
            else CommandStatus.SUCCEEDED
        )
        changes: list[CommandChange] = [(ids.acb, counter, read_status, message)]
        status = command_status_for(after)
        if status is not None and record.command_counter is not None:
            changes.append((ids.tcos, record.command_counter, status, None))
        return AnswerEffect(
            record=after,
            commands=changes,
            flip=device if after.status is _S.MIGRATED else None,
            audit=audit_entry(
                now,
                "migration.read",
                device,
                counter=counter,
                reading=reading.name,
                **transition_details(record, after),
            ),
        )


__all__ = [
    "ACTOR",
    "AnswerEffect",
    "MigrationAnswers",
    "audit_entry",
    "close_command",
    "command_status_for",
    "flip_to_ecos",
    "transition_details",
]
