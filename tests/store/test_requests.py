"""Requests: recorded once, compare-and-set lifecycle, RequestID counter advance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openecos.store import (
    CounterNotAdvanced,
    DuplicateKey,
    RequestStatus,
    StaleState,
    Store,
)
from openecos.store.records import U64_MAX
from tests.store.factories import ESME, SUPPLIER, T0, TCOS, request


def test_request_round_trips_under_its_canonical_request_id(store: Store) -> None:
    record = request(counter=1000)
    store.requests.add(record)
    assert record.request_id == "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000"
    assert store.requests.get(record.request_id) == record
    with pytest.raises(DuplicateKey):
        store.requests.add(record)


def test_transition_is_compare_and_set(store: Store) -> None:
    store.requests.add(request())
    rid = request().request_id
    later = T0 + timedelta(seconds=1)
    moved = store.requests.transition(
        rid,
        expected=RequestStatus.RECEIVED,
        status=RequestStatus.ACKNOWLEDGED,
        at=later,
        response_code="I99",
        cos_party=TCOS,
    )
    assert (moved.status, moved.response_code, moved.cos_party, moved.updated_at) == (
        RequestStatus.ACKNOWLEDGED,
        "I99",
        TCOS,
        later,
    )
    with pytest.raises(StaleState):
        store.requests.transition(
            rid, expected=RequestStatus.RECEIVED, status=RequestStatus.REJECTED, at=later
        )
    assert store.requests.find(status=RequestStatus.ACKNOWLEDGED) == [moved]


def test_counter_advance_refuses_replay_and_reorder(store: Store) -> None:
    advance = store.requests.advance_counter
    advance(SUPPLIER, 10)
    with pytest.raises(CounterNotAdvanced) as replay:
        advance(SUPPLIER, 10)
    assert replay.value.last == 10
    with pytest.raises(CounterNotAdvanced):
        advance(SUPPLIER, 9)  # reordered: older than the last accepted
    advance(SUPPLIER, 11)
    advance(ESME, 1)  # counters are per originator
    assert store.requests.last_counter(SUPPLIER) == 11


def test_counter_spans_the_full_unsigned_64_bit_range(store: Store) -> None:
    store.requests.advance_counter(SUPPLIER, 0)
    store.requests.advance_counter(SUPPLIER, (1 << 63) - 1)
    store.requests.advance_counter(SUPPLIER, 1 << 63)  # would be negative in a plain BIGINT
    store.requests.advance_counter(SUPPLIER, U64_MAX)
    with pytest.raises(CounterNotAdvanced):
        store.requests.advance_counter(SUPPLIER, 1 << 63)
    assert store.requests.last_counter(SUPPLIER) == U64_MAX


def test_replayed_request_in_a_transaction_leaves_no_trace(store: Store) -> None:
    first = request(counter=5)
    with store.transaction() as tx:
        tx.requests.advance_counter(first.originator, first.counter)
        tx.requests.add(first)
    replay = request(counter=5, raw_xml=b"<again/>")
    with pytest.raises(CounterNotAdvanced), store.transaction() as tx:
        tx.requests.advance_counter(replay.originator, replay.counter)
        tx.requests.add(replay)
    assert store.requests.get(first.request_id).raw_xml == first.raw_xml
    # A failure after the counter moved rolls the counter back too.
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.requests.advance_counter(SUPPLIER, 6)
        raise RuntimeError("crash before the request is recorded")
    assert store.requests.last_counter(SUPPLIER) == 5


def test_refused_write_inside_a_transaction_keeps_the_transaction_usable(store: Store) -> None:
    with store.transaction() as tx:
        tx.requests.add(request(counter=1))
        with pytest.raises(DuplicateKey):
            tx.requests.add(request(counter=1))
        tx.requests.add(request(counter=2))
    assert len(store.requests.find()) == 2
