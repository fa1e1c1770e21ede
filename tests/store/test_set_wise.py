"""Set-wise writes: each does what the one-row call does for every row, in one statement."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openecos.eui import Eui64
from openecos.store import (
    CommandInFlight,
    CommandStatus,
    CounterNotAdvanced,
    DuplicateKey,
    OutboxKind,
    RequestStatus,
    Store,
    WorkStatus,
)
from tests.store.factories import SUPPLIER, T0, TCOS, command, device, request

OTHER = Eui64.parse("90B3D51F30020000")
LEASE = timedelta(seconds=30)


def test_advance_counters_says_what_advance_counter_says_pair_by_pair(store: Store) -> None:
    # Repeated originators, replays, reorders within the batch and against the stored value.
    store.requests.advance_counter(SUPPLIER, 10)
    pairs = [
        (SUPPLIER, 11),
        (OTHER, 5),
        (SUPPLIER, 11),  # replay inside the batch
        (SUPPLIER, 9),  # below the stored value
        (OTHER, 7),
        (SUPPLIER, 12),
        (OTHER, 6),  # reordered
    ]
    with store.transaction() as tx:
        outcome = tx.requests.advance_counters(pairs)
    # Pair by pair: accepted when above the originator's last accepted counter.
    assert outcome == [None, None, 12, 12, None, None, 7]
    assert store.requests.last_counter(SUPPLIER) == 12
    assert store.requests.last_counter(OTHER) == 7
    # Refused pairs changed nothing: the next one-by-one call sees the same counters.
    with pytest.raises(CounterNotAdvanced):
        store.requests.advance_counter(OTHER, 7)
    store.requests.advance_counter(OTHER, 8)


def test_advance_counters_rolled_back_with_its_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.requests.advance_counters([(SUPPLIER, 3)])
        raise RuntimeError("the commit does not happen")
    assert store.requests.last_counter(SUPPLIER) is None


def test_add_many_records_every_request_or_none(store: Store) -> None:
    records = [request(counter=n) for n in (1, 2, 3)]
    store.requests.add_many(records)
    assert [store.requests.get(r.request_id) for r in records] == records
    with pytest.raises(DuplicateKey):
        store.requests.add_many([request(counter=4), request(counter=2)])
    assert store.requests.get_many([request(counter=4).request_id]) == {}


def test_transition_many_moves_only_rows_in_the_expected_status(store: Store) -> None:
    records = [request(counter=n, status=RequestStatus.ACKNOWLEDGED) for n in (1, 2)]
    store.requests.add_many([*records, request(counter=3)])  # the third is Received
    ids = [r.request_id for r in records] + [request(counter=3).request_id]
    moved = store.requests.transition_many(
        ids,
        expected=RequestStatus.ACKNOWLEDGED,
        status=RequestStatus.QUEUED,
        at=T0 + timedelta(seconds=1),
        cos_party=TCOS,
    )
    assert moved == {r.request_id for r in records}
    got = store.requests.get_many(ids)
    assert [got[i].status for i in ids] == [
        RequestStatus.QUEUED,
        RequestStatus.QUEUED,
        RequestStatus.RECEIVED,
    ]
    assert got[ids[0]].cos_party == TCOS and got[ids[2]].cos_party is None


def test_commands_add_many_refuses_all_when_one_breaks_the_in_flight_rule(store: Store) -> None:
    other = Eui64.parse("00DB1234567890A1")
    store.devices.add(device())
    store.devices.add(device(other, mpxn="1200023305971"))
    store.commands.add(command(1))
    with pytest.raises(CommandInFlight):
        store.commands.add_many([command(2, target=other), command(3)])
    assert store.commands.in_flight(other) is None
    store.commands.add_many([command(2, target=other)])
    assert store.commands.in_flight(other) == command(2, target=other)


def test_mark_sent_many_moves_only_prepared_commands(store: Store) -> None:
    other = Eui64.parse("00DB1234567890A1")
    store.devices.add(device())
    store.devices.add(device(other, mpxn="1200023305971"))
    store.commands.add_many([command(1), command(2, target=other)])
    store.commands.transition(
        TCOS, 2, expected=CommandStatus.PREPARED, status=CommandStatus.SUCCEEDED, at=T0
    )
    sent_at = T0 + timedelta(seconds=2)
    assert store.commands.mark_sent_many([command(1), command(2, target=other)], at=sent_at) == 1
    assert store.commands.get(TCOS, 1).status is CommandStatus.SENT
    assert store.commands.get(TCOS, 1).sent_at == sent_at
    assert store.commands.get(TCOS, 2).status is CommandStatus.SUCCEEDED


def test_complete_many_is_fenced_like_complete(store: Store) -> None:
    store.work.enqueue_many("q", [("a", T0), ("b", T0), ("c", T0)], {})
    claims = store.work.claim("q", "w1", now=T0, lease=LEASE, limit=3)
    assert [c.subject for c in claims] == ["a", "b", "c"]
    # "b" is taken over after its lease ran out: w1 may no longer finish it.
    store.work.fail(claims[1], at=T0, error="x", retry_at=T0)
    taken = store.work.claim("q", "w2", now=T0 + timedelta(seconds=1), lease=LEASE)
    assert [c.subject for c in taken] == ["b"]
    lost = store.work.complete_many(claims, at=T0 + timedelta(seconds=2))
    assert [c.subject for c in lost] == ["b"]
    assert store.work.status(claims[0].item_id) is WorkStatus.DONE
    assert store.work.status(taken[0].item_id) is WorkStatus.CLAIMED
    with pytest.raises(DuplicateKey):
        store.work.enqueue_many("q", [("b", T0)], {})


def test_outbox_put_many_keeps_the_order(store: Store) -> None:
    store.outbox.put_many(
        [
            (SUPPLIER, OutboxKind.RESPONSE, b"<one/>", "r1"),
            (OTHER, OutboxKind.ALERT, b"<two/>", None),
            (SUPPLIER, OutboxKind.ALERT, b"<three/>", "r1"),
        ],
        at=T0,
    )
    taken = store.outbox.take(SUPPLIER, at=T0)
    assert [(m.kind, m.body, m.request_id) for m in taken] == [
        (OutboxKind.RESPONSE, b"<one/>", "r1"),
        (OutboxKind.ALERT, b"<three/>", "r1"),
    ]


def test_audit_append_many_checks_every_entry_first(store: Store) -> None:
    with pytest.raises(Exception, match="details"):
        store.audit.append_many(
            [(T0, "a", "ok", "s1", {}), (T0, "a", "bad", "s2", {"x": float("nan")})]
        )
    assert store.audit.entries() == []
    store.audit.append_many([(T0, "a", "one", "s1", {"n": 1}), (T0, "a", "two", "s2", {})])
    assert [(e.action, e.subject, dict(e.details)) for e in store.audit.entries()] == [
        ("one", "s1", {"n": 1}),
        ("two", "s2", {}),
    ]
