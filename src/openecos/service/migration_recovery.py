"""The engine's recovery steps: time-outs, credentials reads, and sending what was recorded.

Theory of operation. These are steps 4 and 5 of
:meth:`openecos.service.migration_engine.MigrationEngine.step` and the send
that every step which records commands ends with (kept apart so each module
reads in one sitting; :class:`RecoverySteps` is a base of the engine):

- *time-outs*: rows whose command or read was not answered by ``next_at``
  are claimed; a command still Prepared (the process died between recording
  and sending it) is sent again with the same bytes, never re-signed;
  otherwise :func:`~openecos.migration.response_timed_out` /
  :func:`~openecos.migration.read_timed_out` say what follows and the
  command records are closed to match;
- *reads*: rows whose outcome is in doubt get a CS02a read of the
  transitionalCoS cell, from the Access Control Broker with a counter from a
  block reserved durably first;
- *sending*: the recorded bytes go out, then the commands are marked Sent; a
  command the network could not deliver at all is a definitive
  DELIVERY_FAILED (or a failed read) at once.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.migration import (
    MeterMigration,
    MigrationStatus,
    build_credentials_read,
    read_sent,
    read_timed_out,
    response_received,
    response_timed_out,
)
from openecos.migration.credentials import READ_MESSAGE_CODE
from openecos.migration.policy import ErrorClass
from openecos.service.clock import Clock
from openecos.service.migration_answers import (
    audit_entry,
    close_command,
    command_status_for,
    transition_details,
)
from openecos.service.migration_delivery import Deliver, deliver_all
from openecos.service.migration_identities import MigrationIdentities
from openecos.service.migration_settings import MigrationSettings
from openecos.service.worker import DeviceKeyDirectory
from openecos.store import CommandRecord, CommandStatus, LeaseLost, NotFound, Store
from openecos.store.migration import (
    MigrationClaim,
    MigrationRepository,
    MigrationTx,
    migration_transaction,
    reserve_counters,
)

if TYPE_CHECKING:
    from openecos.service.migration_engine import EngineConfig

log = logging.getLogger(__name__)
_S = MigrationStatus


class RecoverySteps:
    """Time-outs, reads and sending (see the module docstring); a base of the engine."""

    store: Store
    identities: MigrationIdentities
    clock: Clock
    deliver: Deliver
    worker_id: str
    config: EngineConfig
    device_keys: DeviceKeyDirectory
    mig: MigrationRepository
    _settings: MigrationSettings

    def _crash_point(self, name: str) -> None:
        if self.config.crash_at == name:
            log.warning("fault injection: killing the process at %s", name)
            os.kill(os.getpid(), signal.SIGKILL)

    def _save(self, mtx: MigrationTx, record: MeterMigration, claim: MigrationClaim) -> bool:
        try:
            mtx.mig.save(record, claim=claim)
        except LeaseLost:
            log.info("claim on %s was taken over", record.device)
            return False
        return True

    # -- 4. time-outs -------------------------------------------------------------------------

    def time_out_due(self, settings: MigrationSettings) -> int:
        now = self.clock.now()
        claims = self.mig.claim(
            {_S.IN_FLIGHT, _S.READING_CREDENTIALS},
            self.worker_id,
            now=now,
            lease=self.config.lease,
            limit=self.config.batch * 4,
        )
        if not claims:
            return 0
        policy = settings.policy.policy()
        ids = self.identities
        resend: list[CommandRecord] = []
        with migration_transaction(self.store) as mtx:
            entries = []
            for claim in claims:
                record = claim.record
                reading = record.status is _S.READING_CREDENTIALS
                signer = ids.acb if reading else ids.tcos
                counter = record.read_counter if reading else record.command_counter
                with mtx.savepoint():
                    command = _command(mtx, signer, counter)
                    if command is not None and command.status is CommandStatus.PREPARED:
                        # Recorded, then the process died before sending: send the same bytes.
                        if self._save(
                            mtx, replace(record, next_at=now + policy.response_timeout), claim
                        ):
                            resend.append(command)
                        continue
                    if reading:
                        after = read_timed_out(record, now, policy)
                        close_command(mtx.repos, ids.acb, counter, CommandStatus.FAILED, now)
                    else:
                        after = response_timed_out(record, now, policy)
                    status = command_status_for(after)
                    if status is not None:
                        close_command(mtx.repos, ids.tcos, record.command_counter, status, now)
                    if self._save(mtx, after, claim):
                        entries.append(
                            audit_entry(
                                now,
                                "migration.timed-out",
                                record.device,
                                **transition_details(record, after),
                            )
                        )
            mtx.mig.audit_many(entries)
        self._send(resend, now)
        return len(claims)

    # -- 5. credentials reads -----------------------------------------------------------------

    def read_due(self, settings: MigrationSettings) -> int:
        now = self.clock.now()
        claims = self.mig.claim(
            {_S.OUTCOME_UNKNOWN},
            self.worker_id,
            now=now,
            lease=self.config.lease,
            limit=self.config.batch,
        )
        if not claims:
            return 0
        policy = settings.policy.policy()
        ids = self.identities
        counters = reserve_counters(self.store, ids.acb, len(claims))
        built: list[tuple[MigrationClaim, int, bytes]] = []
        for claim, counter in zip(claims, counters, strict=True):
            device = claim.record.device
            try:
                key = self.device_keys.public_key(device, KeyUsage.KEY_AGREEMENT)
            except NotFound:
                log.error("no KA certificate of %s: cannot read it", device)
                continue
            payload = build_credentials_read(
                acb=ids.acb,
                device=device,
                originator_counter=counter,
                acb_key_agreement=ids.acb_key_agreement,
                device_key_agreement_key=key,
            )
            built.append((claim, counter, payload))
        out: list[CommandRecord] = []
        with migration_transaction(self.store) as mtx:
            entries = []
            for claim, counter, payload in built:
                record = claim.record
                command = CommandRecord(
                    signer=ids.acb,
                    originator_counter=counter,
                    device=record.device,
                    message_code=READ_MESSAGE_CODE,
                    payload=payload,
                    created_at=now,
                    credential_changing=False,
                )
                with mtx.savepoint():
                    mtx.repos.commands.add(command)
                    after = read_sent(record, counter=counter, at=now, policy=policy)
                    mtx.mig.save(after, claim=claim)
                    out.append(command)
                    entries.append(
                        audit_entry(now, "migration.read-sent", record.device, counter=counter)
                    )
            mtx.mig.audit_many(entries)
        self._send(out, now)
        return len(claims)

    def _send(self, commands: Sequence[CommandRecord], now: datetime) -> None:
        """Sends recorded commands, then marks them Sent; an undeliverable one fails now."""
        if not commands:
            return
        verdicts = deliver_all(
            self.deliver,
            [(c.device, c.signer, c.originator_counter, c.payload) for c in commands],
        )
        undelivered = [c for c, ok in zip(commands, verdicts, strict=True) if not ok]
        self._crash_point("after-send")
        self.mig.mark_sent([(c.signer, c.originator_counter) for c in commands], at=now)
        if undelivered:
            self._undelivered(undelivered)

    def _undelivered(self, commands: Sequence[CommandRecord]) -> None:
        """The network could not deliver: the cell is unchanged (DELIVERY_FAILED)."""
        now = self.clock.now()
        policy = self._settings.policy.policy()
        ids = self.identities
        with migration_transaction(self.store) as mtx:
            entries = []
            for command in commands:
                with mtx.savepoint():
                    record = mtx.mig.lock(command.device)
                    if record is None:
                        continue
                    if command.signer == ids.acb:
                        if record.read_counter != command.originator_counter or (
                            record.status is not _S.READING_CREDENTIALS
                        ):
                            continue
                        after = read_timed_out(record, now, policy)
                        close_command(
                            mtx.repos,
                            ids.acb,
                            command.originator_counter,
                            CommandStatus.FAILED,
                            now,
                        )
                    else:
                        if record.command_counter != command.originator_counter or (
                            record.status is not _S.IN_FLIGHT
                        ):
                            continue
                        after = response_received(record, ErrorClass.DELIVERY_FAILED, now, policy)
                    status = command_status_for(after)
                    if status is not None:
                        close_command(mtx.repos, ids.tcos, record.command_counter, status, now)
                    mtx.mig.save(after)
                    entries.append(
                        audit_entry(
                            now,
                            "migration.undelivered",
                            record.device,
                            **transition_details(record, after),
                        )
                    )
            mtx.mig.audit_many(entries)


def _command(mtx: MigrationTx, signer: Eui64, counter: int | None) -> CommandRecord | None:
    if counter is None:
        return None
    try:
        return mtx.repos.commands.get(signer, counter)
    except NotFound:
        return None


__all__ = ["Deliver", "RecoverySteps"]
