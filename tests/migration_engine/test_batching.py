"""The engine's batch paths: one hand-over per batch, keys read a batch at a time, set-wise writes.

Each test runs on SQLite and on PostgreSQL, where the set-wise statements
(``unnest`` arrays, ``= ANY``) replace the row-by-row ones: the results must
be the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.migration import ELIGIBLE, EmehraPolicy, MigrationStatus, new_record
from openecos.migration.command import MESSAGE_CODE
from openecos.service import migration_keys
from openecos.service.migration_delivery import EstateDelivery, Outgoing, deliver_all
from openecos.service.migration_keys import MigrationDeviceKeys, public_key_of
from openecos.service.worker import DeviceKeyDirectory
from openecos.smki.sandbox import TCOS_PARTY
from openecos.store import CommandRecord, CommandStatus
from openecos.store.migration import migration_transaction
from tests.migration_engine.world import START, World, drive, make_world

S = MigrationStatus


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    w = make_world(tmp_path, db_url, meters=12)
    yield w
    w.close()


class BatchRecorder:
    """A batch ``Deliver`` over the estate that refuses the first command to one meter."""

    def __init__(self, inner: EstateDelivery, refuse: Eui64) -> None:
        self.inner = inner
        self.refuse: Eui64 | None = refuse
        self.batches: list[int] = []

    def __call__(self, device: Eui64, party: Eui64, counter: int, message: bytes) -> bool:
        raise AssertionError("the engine hands over whole batches")

    def deliver_many(self, commands: Sequence[Outgoing]) -> list[bool]:
        self.batches.append(len(commands))
        verdicts = []
        for device, party, counter, message in commands:
            if device == self.refuse:
                self.refuse = None
                verdicts.append(False)
                continue
            verdicts.append(self.inner(device, party, counter, message))
        return verdicts


def test_the_engine_hands_each_batch_over_at_once_and_a_refused_command_fails_now(
    world: World,
) -> None:
    world.configure()
    world.start()
    refused = world.meters[3]
    engine = world.engine(batch=8)
    deliver = BatchRecorder(engine.deliver, refused)  # type: ignore[arg-type]
    engine.deliver = deliver
    drive(world, engine)

    assert deliver.batches[:2] == [8, 4]
    counts = world.mig.counts_by_status()
    assert counts == {S.MIGRATED: 12}
    actions = [
        (e.action, e.details.get("error"))
        for e in world.store.audit.entries(subject=refused.hex)
        if e.action.startswith("migration.")
    ]
    assert ("migration.undelivered", "DELIVERY_FAILED") in actions
    record = world.mig.get(refused)
    assert record is not None and record.total_attempts == 2


def test_deliver_all_calls_a_plain_deliver_once_per_command() -> None:
    seen: list[int] = []

    def deliver(device: Eui64, party: Eui64, counter: int, message: bytes) -> bool:
        seen.append(counter)
        return counter != 2

    commands = [(Eui64.from_int(1), TCOS_PARTY, n, b"x") for n in (1, 2, 3)]
    assert deliver_all(deliver, commands) == [True, False, True]
    assert seen == [1, 2, 3]


def test_a_batch_deliver_must_answer_once_per_command() -> None:
    class Short:
        def __call__(self, *_: object) -> bool:
            return True

        def deliver_many(self, commands: Sequence[Outgoing]) -> list[bool]:
            return [True]

    with pytest.raises(ValueError, match="once per command"):
        deliver_all(Short(), [(Eui64.from_int(1), TCOS_PARTY, n, b"x") for n in (1, 2)])


def test_prefetched_keys_are_the_directorys_keys(world: World) -> None:
    plain = DeviceKeyDirectory(world.store)
    batch = MigrationDeviceKeys(world.store)
    batch.prefetch([*world.meters, Eui64.from_int(0xDEAD)])  # an unknown one is left out
    for device in world.meters:
        for usage in (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT):
            assert _point(batch.public_key(device, usage)) == _point(
                plain.public_key(device, usage)
            )


def test_the_key_table_stays_bounded(world: World) -> None:
    keys = MigrationDeviceKeys(world.store, capacity=8)
    keys.prefetch(world.meters[:4])
    keys.prefetch(world.meters[4:8])
    assert len(keys._cache) <= 8 + 4
    assert _point(keys.public_key(world.meters[0], KeyUsage.KEY_AGREEMENT))  # read again


def test_a_certificate_cryptography_refuses_is_read_by_the_smki_parser(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_der: bytes) -> object:
        raise ValueError("refused")

    expected = DeviceKeyDirectory(world.store).public_key(world.meters[0], KeyUsage.KEY_AGREEMENT)
    der = world.store.certificates.by_subject(world.meters[0], None, KeyUsage.KEY_AGREEMENT)[0].der
    monkeypatch.setattr(migration_keys.x509, "load_der_x509_certificate", refuse)
    assert _point(public_key_of(der)) == _point(expected)


def test_set_wise_writes_equal_row_by_row_ones(world: World) -> None:
    """Records (the last of a device's wins), commands (a command changed twice goes row by
    row) and audit entries written by one batch read back as written."""
    policy = EmehraPolicy()
    world.mig.insert_many([new_record(m, ELIGIBLE, START, policy) for m in world.meters[:3]])
    a, b, c = world.meters[:3]
    commands = [
        CommandRecord(
            signer=TCOS_PARTY,
            originator_counter=(1 << 63) + i,
            device=d,
            message_code=MESSAGE_CODE,
            payload=bytes([i]) * 300,
            created_at=START,
        )
        for i, d in ((1, a), (2, b), (3, c))
    ]
    later = START + timedelta(seconds=5)
    first = new_record(a, ELIGIBLE, later, policy)
    with migration_transaction(world.store) as mtx:
        mtx.mig.record_starts(commands, [first])
        mtx.mig.audit_many(
            [{"at": START, "actor": "t", "action": "x", "subject": a.hex, "details": {"n": 1.5}}]
        )
    stored = world.store.commands.get(TCOS_PARTY, (1 << 63) + 2)
    assert stored.payload == bytes([2]) * 300 and stored.device == b
    assert stored.status is CommandStatus.PREPARED
    assert world.mig.get(a) == first
    ((entry),) = [e for e in world.store.audit.entries(subject=a.hex) if e.action == "x"]
    assert dict(entry.details) == {"n": 1.5}

    newest = new_record(b, ELIGIBLE, later + timedelta(seconds=1), policy)
    with migration_transaction(world.store) as mtx:
        mtx.mig.apply_effects(
            records=[new_record(b, ELIGIBLE, later, policy), newest],
            commands=[
                (TCOS_PARTY, (1 << 63) + 1, CommandStatus.SUCCEEDED, b"answer"),
                (TCOS_PARTY, (1 << 63) + 3, CommandStatus.OUTCOME_UNKNOWN, None),
            ],
            flips=[a],
            ecos_certificate=b"\x30\x00",
            ecos_subject=a,
            ecos_ski=bytes(8),
            audit=[],
            consumed=[],
            at=later,
        )
    assert world.mig.get(b) == newest
    done = world.store.commands.get(TCOS_PARTY, (1 << 63) + 1)
    assert (done.status, done.response) == (CommandStatus.SUCCEEDED, b"answer")
    doubt = world.store.commands.get(TCOS_PARTY, (1 << 63) + 3)
    assert (doubt.status, doubt.response) == (CommandStatus.OUTCOME_UNKNOWN, None)

    # A command changed twice in one batch: each change sees the one before (row by row).
    with migration_transaction(world.store) as mtx:
        mtx.mig.apply_effects(
            records=[],
            commands=[
                (TCOS_PARTY, (1 << 63) + 3, CommandStatus.SUCCEEDED, b"late"),
                (TCOS_PARTY, (1 << 63) + 3, CommandStatus.FAILED, b"later"),
            ],
            flips=[],
            ecos_certificate=b"\x30\x00",
            ecos_subject=a,
            ecos_ski=bytes(8),
            audit=[],
            consumed=[],
            at=later,
        )
    final = world.store.commands.get(TCOS_PARTY, (1 << 63) + 3)
    assert (final.status, final.response) == (CommandStatus.SUCCEEDED, b"late")


def test_many_outputs_are_recorded_with_one_call(world: World) -> None:
    device = world.meters[0]
    with world.store.transaction(durable=False) as tx:
        tx.estate.add_outputs(
            [(device, "response", TCOS_PARTY, n, bytes([n])) for n in (5, 6)], at=START
        )
    outputs = world.store.estate.outputs(device)
    assert [(o.originator_counter, o.message, o.kind) for o in outputs] == [
        (5, b"\x05", "response"),
        (6, b"\x06", "response"),
    ]


def _point(key: ec.EllipticCurvePublicKey) -> tuple[int, int]:
    numbers = key.public_numbers()
    return numbers.x, numbers.y
