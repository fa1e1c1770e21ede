"""Outbox: oldest first, each message consumed exactly once, even with two consumers."""

from __future__ import annotations

import threading
from datetime import timedelta

from openecos.eui import Eui64
from openecos.store import OutboxKind, Store
from tests.store.factories import SUPPLIER, T0


def test_messages_come_oldest_first_and_only_once(store: Store) -> None:
    other = Eui64.from_int(3)
    ids = [
        store.outbox.put(SUPPLIER, OutboxKind.RESPONSE, f"<r{n}/>".encode(), at=T0)
        for n in range(3)
    ]
    store.outbox.put(other, OutboxKind.ALERT, b"<alert/>", at=T0, request_id="x")
    first = store.outbox.take(SUPPLIER, at=T0 + timedelta(seconds=1), limit=2)
    assert [m.message_id for m in first] == ids[:2]
    assert [m.body for m in first] == [b"<r0/>", b"<r1/>"]
    assert store.outbox.waiting(SUPPLIER) == 1
    assert [m.message_id for m in store.outbox.take(SUPPLIER, at=T0)] == ids[2:]
    assert store.outbox.take(SUPPLIER, at=T0) == []
    alert = store.outbox.take(other, at=T0)
    assert [(m.kind, m.request_id) for m in alert] == [(OutboxKind.ALERT, "x")]


def test_two_consumers_never_receive_the_same_message(store: Store) -> None:
    total = 200
    for n in range(total):
        store.outbox.put(SUPPLIER, OutboxKind.RESPONSE, str(n).encode(), at=T0)
    barrier = threading.Barrier(2)
    taken: list[list[int]] = [[], []]

    def consume(slot: int) -> None:
        barrier.wait()
        while batch := store.outbox.take(SUPPLIER, at=T0, limit=7):
            taken[slot].extend(m.message_id for m in batch)

    threads = [threading.Thread(target=consume, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = taken[0] + taken[1]
    assert len(everything) == len(set(everything)) == total
    for ids in taken:
        assert ids == sorted(ids)  # each consumer sees them oldest first
    assert store.outbox.waiting(SUPPLIER) == 0
