"""Commands: one credential-changing command in flight per device, by the database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import insert

from openecos.eui import Eui64
from openecos.gbcs.codes import MessageCode
from openecos.store import (
    CommandInFlight,
    CommandStatus,
    DuplicateKey,
    ReferenceMissing,
    StaleState,
    Store,
    schema,
)
from tests.store.factories import ESME, T0, command, device, request


@pytest.fixture
def meter(store: Store) -> Store:
    store.devices.add(device())
    return store


def test_command_round_trips(meter: Store) -> None:
    meter.requests.add(request())
    record = command(1, request_id=request().request_id)
    meter.commands.add(record)
    assert meter.commands.get(record.signer, 1) == record
    assert meter.commands.for_request(request().request_id) == [record]
    assert meter.commands.in_flight(ESME) == record


def test_second_credential_changing_command_is_refused_until_the_first_ends(meter: Store) -> None:
    first = command(1)
    meter.commands.add(first)
    with pytest.raises(CommandInFlight):
        meter.commands.add(command(2))
    meter.commands.add(command(3, credential_changing=False))  # e.g. a CS02a read
    sent = meter.commands.transition(
        first.signer, 1, expected=CommandStatus.PREPARED, status=CommandStatus.SENT, at=T0
    )
    assert sent.sent_at == T0
    done = meter.commands.transition(
        first.signer,
        1,
        expected=CommandStatus.SENT,
        status=CommandStatus.SUCCEEDED,
        at=T0 + timedelta(seconds=3),
        response=b"\x01\x02",
    )
    assert (done.answered_at, done.response) == (T0 + timedelta(seconds=3), b"\x01\x02")
    meter.commands.add(command(4))
    assert meter.commands.in_flight(ESME).originator_counter == 4  # type: ignore[union-attr]


def test_counter_reuse_and_unknown_device_are_refused(meter: Store) -> None:
    meter.commands.add(command(1, credential_changing=False))
    with pytest.raises(DuplicateKey):
        meter.commands.add(command(1, credential_changing=False))
    with pytest.raises(ReferenceMissing):
        meter.commands.add(command(2, target=Eui64.from_int(7)))


def test_transition_from_a_stale_status_is_refused(meter: Store) -> None:
    record = command(1)
    meter.commands.add(record)
    with pytest.raises(StaleState):
        meter.commands.transition(
            record.signer, 1, expected=CommandStatus.SENT, status=CommandStatus.FAILED, at=T0
        )


def test_database_refuses_a_second_in_flight_row_even_without_the_repository(
    meter: Store,
) -> None:
    meter.commands.add(command(1))
    row = {
        "signer": command(2).signer,
        "originator_counter": 2,
        "device": ESME,
        "message_code": MessageCode.CS02B_TRANS_COS_BY_TRANS_COS,
        "credential_changing": True,
        "payload": b"\x00",
        "status": CommandStatus.OUTCOME_UNKNOWN,
        "created_at": T0,
    }
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), meter.engine.begin() as conn:
        conn.execute(insert(schema.commands).values(**row))


def test_two_connections_racing_for_one_device_one_wins(meter: Store) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(counter: int) -> None:
        barrier.wait()
        try:
            meter.commands.add(command(counter))
            result = "won"
        except CommandInFlight:
            result = "refused"
        with lock:
            outcomes.append(result)

    for round_ in range(5):
        threads = [threading.Thread(target=race, args=(10 * round_ + n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winner = meter.commands.in_flight(ESME)
        assert winner is not None
        meter.commands.transition(
            winner.signer,
            winner.originator_counter,
            expected=CommandStatus.PREPARED,
            status=CommandStatus.CANCELLED,
            at=T0,
        )
    assert sorted(outcomes) == ["refused"] * 5 + ["won"] * 5
