"""Every engine transition and EMEHRA error class, end to end against the simulated estate.

Each test runs the engine against meters in the store's persistent estate
(real 0x0106 signatures, MACs, meter checks and signed answers) with faults
injected by a reproducible :class:`FaultPlan`, and checks where the meter ends,
why, what the inventory says, and what happened to the commands.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from openecos.eui import Eui64
from openecos.migration import (
    CredentialKnowledge,
    EcosCredential,
    ErrorClass,
    MigrationStatus,
    Reason,
)
from openecos.migration.command import MESSAGE_CODE
from openecos.network import MeterFaults
from openecos.service.migration_delivery import FaultPlan
from openecos.smki.sandbox import ACCESS_CONTROL_BROKER, TCOS_PARTY
from openecos.store import CommandStatus, CosCredentialState, schema
from tests.migration_engine.world import World, drive, make_world, pki

S = MigrationStatus


@pytest.fixture
def world(tmp_path: Path, sqlite_url: str) -> World:
    w = make_world(tmp_path, sqlite_url, meters=4)
    w.configure()
    w.start()
    yield w  # type: ignore[misc]
    w.close()


def _tcos_only(faults: MeterFaults, **extra: object) -> FaultPlan:
    return FaultPlan(faults, originators=frozenset({TCOS_PARTY}), **extra)  # type: ignore[arg-type]


def _commands(world: World, device: Eui64, signer: Eui64) -> list[tuple[int, CommandStatus]]:
    with world.store.engine.connect() as conn:
        rows = conn.execute(
            schema.commands.select()
            .where(schema.commands.c.device == device, schema.commands.c.signer == signer)
            .order_by(schema.commands.c.originator_counter)
        ).all()
    return [(r.originator_counter, r.status) for r in rows]


def _cell(world: World, device: Eui64) -> bytes:
    for cell in world.store.devices.trust_anchors(device):
        if cell.role.name == "TRANSITIONAL_COS":
            return cell.certificate_der
    raise AssertionError("no transitionalCoS cell")


def test_a_clean_migration_is_confirmed_by_the_response_and_flips_the_inventory(
    world: World,
) -> None:
    engine = world.engine()
    drive(world, engine)
    device = world.meters[0]
    record = world.mig.get(device)
    assert record is not None
    assert (record.status, record.reason) == (S.MIGRATED, Reason.CONFIRMED_BY_RESPONSE)
    assert record.credentials is CredentialKnowledge.ECOS and record.next_at is None
    assert world.store.devices.get(device).credential_state is CosCredentialState.ECOS
    assert _cell(world, device) == pki().entry("ecos-ds").certificate.der
    [(counter, status)] = _commands(world, device, TCOS_PARTY)
    assert status is CommandStatus.SUCCEEDED and counter == record.command_counter
    command = world.store.commands.get(TCOS_PARTY, counter)
    assert command.message_code == MESSAGE_CODE and command.response is not None
    # The simulated meter holds the ECoS certificate now, and a read says so.
    state = world.estate.state(device)
    assert state is not None


def test_a_lost_answer_is_resolved_by_a_credentials_read_showing_ecos(world: World) -> None:
    engine = world.engine(plan=_tcos_only(MeterFaults(no_response=1.0)))
    drive(world, engine)
    record = world.mig.get(world.meters[0])
    assert record is not None
    assert (record.status, record.reason) == (S.MIGRATED, Reason.CONFIRMED_BY_READ)
    assert record.reads == 1 and record.total_attempts == 1
    assert [s for _, s in _commands(world, world.meters[0], ACCESS_CONTROL_BROKER)] == [
        CommandStatus.SUCCEEDED
    ]
    assert world.store.devices.get(world.meters[0]).credential_state is CosCredentialState.ECOS
    actions = [e.action for e in world.store.audit.entries(subject=world.meters[0].hex)]
    assert actions.index("migration.timed-out") < actions.index("migration.read-sent")
    assert actions.index("migration.read-sent") < actions.index("migration.read")


@pytest.mark.parametrize(
    ("faults", "bad_signature", "error"),
    [
        (MeterFaults(malformed_response=1.0), 0.0, ErrorClass.MALFORMED_RESPONSE),
        (MeterFaults(), 1.0, ErrorClass.SIGNATURE_INVALID),
    ],
)
def test_an_answer_that_cannot_be_believed_is_checked_by_a_read_before_anything_else(
    world: World, faults: MeterFaults, bad_signature: float, error: ErrorClass
) -> None:
    engine = world.engine(plan=_tcos_only(faults, bad_signature=bad_signature))
    drive(world, engine)
    record = world.mig.get(world.meters[0])
    assert record is not None
    assert (record.status, record.reason) == (S.MIGRATED, Reason.CONFIRMED_BY_READ)
    entries = world.store.audit.entries(subject=world.meters[0].hex)
    answered = [e for e in entries if e.action == "migration.answered"]
    assert answered and answered[0].details["error"] == error.name
    assert answered[0].details["to"] == "OUTCOME_UNKNOWN"


def test_a_lost_command_is_read_as_tcos_retried_and_escalated_when_the_budget_is_spent(
    world: World,
) -> None:
    engine = world.engine(plan=_tcos_only(MeterFaults(reboot=1.0)))
    drive(world, engine)
    record = world.mig.get(world.meters[0])
    assert record is not None
    assert (record.status, record.reason) == (S.EXCEPTION, Reason.RETRY_BUDGET_SPENT)
    assert record.error is ErrorClass.NO_RESPONSE and record.credentials is CredentialKnowledge.TCOS
    assert record.total_attempts == 4  # DEFAULT_POLICIES[NO_RESPONSE].max_attempts
    assert world.store.devices.get(world.meters[0]).credential_state is CosCredentialState.TCOS
    # Every attempt read the cell first; every 0x0106 is closed, none is left in flight.
    statuses = [s for _, s in _commands(world, world.meters[0], TCOS_PARTY)]
    assert statuses == [CommandStatus.FAILED] * 4
    counters = [c for c, _ in _commands(world, world.meters[0], TCOS_PARTY)]
    assert counters == sorted(set(counters))


def test_a_busy_meter_is_retried_with_backoff_then_escalated(world: World) -> None:
    engine = world.engine(plan=_tcos_only(MeterFaults(busy=1.0)))
    drive(world, engine)
    record = world.mig.get(world.meters[0])
    assert record is not None
    assert (record.status, record.reason, record.error) == (
        S.EXCEPTION,
        Reason.RETRY_BUDGET_SPENT,
        ErrorClass.METER_BUSY,
    )
    assert record.total_attempts == 6 and record.reads == 0  # definitive: never read
    waits = [
        e.details["next_at"]
        for e in world.store.audit.entries(subject=world.meters[0].hex)
        if e.action == "migration.answered" and e.details["to"] == "RETRY_WAIT"
    ]
    assert len(waits) == 5


def test_a_meter_that_breaks_ends_as_an_exception_with_its_cell_unknown(world: World) -> None:
    plan = FaultPlan(MeterFaults(broken=1.0), devices=frozenset({world.meters[1]}))
    engine = world.engine(plan=plan)
    drive(world, engine)
    record = world.mig.get(world.meters[1])
    assert record is not None
    assert (record.status, record.reason) == (S.EXCEPTION, Reason.READ_BUDGET_SPENT)
    assert record.credentials is CredentialKnowledge.UNKNOWN
    assert world.store.devices.get(world.meters[1]).credential_state is CosCredentialState.TCOS
    # The others are not affected.
    assert world.mig.get(world.meters[0]).status is S.MIGRATED  # type: ignore[union-attr]
    # Nothing is left in flight for the broken meter: a 6.23 would not wait for ever.
    assert world.store.commands.in_flight(world.meters[1]) is None


def test_a_meter_off_the_network_fails_delivery_and_is_retried_then_escalated(
    world: World,
) -> None:
    # A meter the simulated network does not have (no cells to commission it from).
    with world.store.engine.begin() as conn:
        conn.execute(
            delete(schema.device_trust_anchors).where(
                schema.device_trust_anchors.c.device == world.meters[2]
            )
        )
    engine = world.engine()
    drive(world, engine)
    record = world.mig.get(world.meters[2])
    assert record is not None
    assert (record.status, record.reason, record.error) == (
        S.EXCEPTION,
        Reason.RETRY_BUDGET_SPENT,
        ErrorClass.DELIVERY_FAILED,
    )
    assert record.total_attempts == 6


def test_a_meter_without_a_transitional_cos_anchor_is_an_exception(world: World) -> None:
    # The meter has no transitionalCoS cell: it discards the 0x0106; the read says so.
    with world.store.engine.begin() as conn:
        conn.execute(
            delete(schema.device_trust_anchors).where(
                schema.device_trust_anchors.c.device == world.meters[2],
                schema.device_trust_anchors.c.role == 5,
            )
        )
    drive(world, world.engine())
    record = world.mig.get(world.meters[2])
    assert record is not None
    assert (record.status, record.reason, record.error) == (
        S.EXCEPTION,
        Reason.NOT_RETRYABLE,
        ErrorClass.TRUST_ANCHOR_NOT_FOUND,
    )


def test_a_cell_holding_neither_party_is_an_exception(world: World) -> None:
    other = pki().entry("supplier-b-ds").certificate.der
    with world.store.engine.begin() as conn:
        conn.execute(
            update(schema.device_trust_anchors)
            .where(
                schema.device_trust_anchors.c.device == world.meters[3],
                schema.device_trust_anchors.c.role == 5,
            )
            .values(certificate_der=other)
        )
    drive(world, world.engine())
    record = world.mig.get(world.meters[3])
    assert record is not None
    assert (record.status, record.error, record.credentials) == (
        S.EXCEPTION,
        ErrorClass.UNEXPECTED_CREDENTIALS,
        CredentialKnowledge.OTHER,
    )


def test_a_certificate_the_meter_refuses_is_not_retried(world: World) -> None:
    # An unreadable certification path: the meter answers badCertificate for the cell.
    bad = EcosCredential(
        world.identities.credential.certificate,
        (b"\x30\x03\x02\x01\x00",),
        world.identities.credential.identity,
    )
    world.identities = replace(world.identities, credential=bad)
    drive(world, world.engine())
    record = world.mig.get(world.meters[0])
    assert record is not None
    assert (record.status, record.reason, record.error) == (
        S.EXCEPTION,
        Reason.NOT_RETRYABLE,
        ErrorClass.BAD_CERTIFICATE,
    )
    assert record.total_attempts == 1
    assert world.store.devices.get(world.meters[0]).credential_state is CosCredentialState.TCOS


def test_a_certificate_that_does_not_chain_to_the_meters_root_is_not_retried(
    world: World,
) -> None:
    bad = EcosCredential(
        world.identities.credential.certificate,
        (),
        world.identities.credential.identity,
    )
    world.identities = replace(world.identities, credential=bad)
    drive(world, world.engine())
    record = world.mig.get(world.meters[0])
    assert record is not None
    assert (record.status, record.error) == (S.EXCEPTION, ErrorClass.NO_TRUST_ANCHOR)


def test_a_success_naming_another_certificate_is_a_mismatch_resolved_by_a_read(
    world: World,
) -> None:
    # The engine expects the TCoS identity (a misconfiguration): the meter's success names
    # the ECoS certificate, which is a mismatch; the read then finds a cell holding neither.
    wrong = replace(world.identities.credential, identity=world.identities.tcos_identity)
    world.identities = replace(world.identities, credential=wrong)
    drive(world, world.engine())
    record = world.mig.get(world.meters[0])
    assert record is not None
    answered = [
        e
        for e in world.store.audit.entries(subject=world.meters[0].hex)
        if e.action == "migration.answered"
    ]
    assert answered[0].details["error"] == ErrorClass.RESPONSE_MISMATCH.name
    assert record.status is S.EXCEPTION
    assert world.store.devices.get(world.meters[0]).credential_state is CosCredentialState.TCOS


def test_a_meter_reporting_another_failure_status_is_retried_then_escalated(
    world: World,
) -> None:
    # The meter authenticates the 0x0106, changes nothing and signs statusCode other (127).
    engine = world.engine(plan=_tcos_only(MeterFaults(), rejected=1.0))
    drive(world, engine)
    device = world.meters[0]
    record = world.mig.get(device)
    assert record is not None
    assert (record.status, record.reason, record.error) == (
        S.EXCEPTION,
        Reason.RETRY_BUDGET_SPENT,
        ErrorClass.REJECTED,
    )
    assert record.total_attempts == 2 and record.reads == 0  # definitive: never read
    assert record.credentials is CredentialKnowledge.TCOS
    assert world.store.devices.get(device).credential_state is CosCredentialState.TCOS
    assert _cell(world, device) == pki().entry("tcos-ds").certificate.der
    assert [s for _, s in _commands(world, device, TCOS_PARTY)] == [CommandStatus.FAILED] * 2
    answered = [
        e.details
        for e in world.store.audit.entries(subject=device.hex)
        if e.action == "migration.answered"
    ]
    assert [(a["error"], a["to"]) for a in answered] == [
        ("REJECTED", "RETRY_WAIT"),
        ("REJECTED", "EXCEPTION"),
    ]


def test_a_rejection_once_is_followed_by_a_migration_on_the_retry(world: World) -> None:
    # Seeded so that some meter's first 0x0106 is rejected and its retry is not.
    plan = _tcos_only(MeterFaults(), rejected=0.5, seed=7)
    drive(world, world.engine(plan=plan))
    recovered = 0
    for device in world.meters:
        record = world.mig.get(device)
        assert record is not None
        answered = [
            (e.details.get("error"), e.details["to"])
            for e in world.store.audit.entries(subject=device.hex)
            if e.action == "migration.answered"
        ]
        if record.status is S.MIGRATED and record.total_attempts == 2:
            assert answered == [("REJECTED", "RETRY_WAIT"), (None, "MIGRATED")]
            recovered += 1
        elif record.status is S.EXCEPTION:
            assert answered == [("REJECTED", "RETRY_WAIT"), ("REJECTED", "EXCEPTION")]
        else:
            assert (record.status, answered) == (S.MIGRATED, [(None, "MIGRATED")])
    assert recovered, "the seed rejects no first attempt alone: choose another"


def test_every_error_class_is_proven_end_to_end_in_this_module() -> None:
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    proven = {c for c in ErrorClass if f'"{c.name}"' in source or f"ErrorClass.{c.name}" in source}
    assert proven == set(ErrorClass)


def test_no_record_ever_lacks_a_reason_or_a_next_step(world: World) -> None:
    plan = FaultPlan(
        MeterFaults(no_response=0.2, busy=0.2, malformed_response=0.1, reboot=0.1), seed=3
    )
    drive(world, world.engine(plan=plan))
    for device in world.meters:
        record = world.mig.get(device)  # MeterMigration refuses a row without them
        assert record is not None
        assert record.status in (S.MIGRATED, S.EXCEPTION)
        assert record.next_at is not None or record.status is S.MIGRATED
