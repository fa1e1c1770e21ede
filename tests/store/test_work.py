"""Work queue: claims with leases, takeover after expiry, fenced completion."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from openecos.store import DuplicateKey, InvalidRecord, LeaseLost, Store, WorkStatus
from tests.store.factories import T0

LEASE = timedelta(seconds=30)


def test_claim_takes_due_items_oldest_first(store: Store) -> None:
    a = store.work.enqueue("migrate", "dev-a", {"n": 1}, at=T0)
    b = store.work.enqueue("migrate", "dev-b", {"n": 2}, at=T0 + timedelta(seconds=1))
    store.work.enqueue("migrate", "dev-c", {}, at=T0, available_at=T0 + timedelta(hours=1))
    store.work.enqueue("other", "dev-a", {}, at=T0)
    claims = store.work.claim("migrate", "w1", now=T0 + timedelta(seconds=5), lease=LEASE, limit=5)
    assert [(c.item_id, c.payload, c.attempt) for c in claims] == [
        (a, {"n": 1}, 1),
        (b, {"n": 2}, 1),
    ]
    assert store.work.claim("migrate", "w2", now=T0 + timedelta(seconds=6), lease=LEASE) == []


def test_expired_lease_is_taken_over_and_the_old_owner_is_fenced_off(store: Store) -> None:
    item = store.work.enqueue("migrate", "dev-a", {}, at=T0)
    (old,) = store.work.claim("migrate", "w1", now=T0, lease=LEASE)
    assert (
        store.work.claim("migrate", "w2", now=T0 + LEASE - timedelta(microseconds=1), lease=LEASE)
        == []
    )
    (new,) = store.work.claim("migrate", "w2", now=T0 + LEASE, lease=LEASE)
    assert (new.item_id, new.worker, new.attempt) == (item, "w2", 2)
    with pytest.raises(LeaseLost):
        store.work.complete(old, at=T0 + LEASE)
    with pytest.raises(LeaseLost):
        store.work.renew(old, now=T0 + LEASE, lease=LEASE)
    store.work.complete(new, at=T0 + LEASE)
    assert store.work.status(item) is WorkStatus.DONE


def test_renewed_lease_is_not_taken_over(store: Store) -> None:
    store.work.enqueue("migrate", "dev-a", {}, at=T0)
    (claim,) = store.work.claim("migrate", "w1", now=T0, lease=LEASE)
    renewed = store.work.renew(claim, now=T0 + timedelta(seconds=20), lease=LEASE)
    assert store.work.claim("migrate", "w2", now=T0 + LEASE, lease=LEASE) == []
    store.work.complete(renewed, at=T0 + LEASE)


def test_failed_item_is_retried_later_or_given_up(store: Store) -> None:
    item = store.work.enqueue("migrate", "dev-a", {}, at=T0)
    (claim,) = store.work.claim("migrate", "w1", now=T0, lease=LEASE)
    retry_at = T0 + timedelta(hours=1)
    store.work.fail(claim, at=T0, error="no response", retry_at=retry_at)
    assert store.work.claim("migrate", "w1", now=retry_at - timedelta(seconds=1), lease=LEASE) == []
    (again,) = store.work.claim("migrate", "w1", now=retry_at, lease=LEASE)
    store.work.fail(again, at=retry_at, error="still nothing")
    assert store.work.status(item) is WorkStatus.FAILED
    store.work.enqueue("migrate", "dev-a", {}, at=retry_at)  # no longer active: may queue again


def test_one_active_item_per_subject(store: Store) -> None:
    store.work.enqueue("migrate", "dev-a", {}, at=T0)
    with pytest.raises(DuplicateKey):
        store.work.enqueue("migrate", "dev-a", {}, at=T0)
    with pytest.raises(InvalidRecord):
        store.work.claim("migrate", "w1", now=T0, lease=timedelta(0))


def test_concurrent_claimers_never_share_an_item(store: Store) -> None:
    for n in range(60):
        store.work.enqueue("migrate", f"dev-{n}", {}, at=T0)
    barrier = threading.Barrier(2)
    got: list[list[int]] = [[], []]

    def work(slot: int) -> None:
        barrier.wait()
        while claims := store.work.claim("migrate", f"w{slot}", now=T0, lease=LEASE, limit=4):
            got[slot].extend(c.item_id for c in claims)

    threads = [threading.Thread(target=work, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got[0]) + len(got[1]) == len(set(got[0]) | set(got[1])) == 60
