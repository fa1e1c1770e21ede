"""What batching writers rely on: counter blocks, savepoints, relaxed-flush transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from openecos.eui import Eui64
from openecos.store import CounterExhausted, Party, Store
from openecos.store.engine import write_transaction
from openecos.store.records import U64_MAX

TCOS = Eui64.parse("90B3D51F30000004")


def test_a_block_of_counters_follows_single_reservations_without_overlap(store: Store) -> None:
    assert store.signing_counters.reserve(TCOS) == 1
    assert list(store.signing_counters.reserve_block(TCOS, 3)) == [2, 3, 4]
    assert store.signing_counters.reserve(TCOS) == 5
    assert store.signing_counters.last(TCOS) == 5


def test_a_first_block_starts_at_one_and_is_committed_when_returned(
    store: Store, db_url: str
) -> None:
    assert list(store.signing_counters.reserve_block(TCOS, 2)) == [1, 2]
    with Store.open(db_url) as other:  # another connection sees it: it was committed
        assert other.signing_counters.last(TCOS) == 2


def test_a_block_past_the_top_of_the_u64_range_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    store.signing_counters.reserve(TCOS, at_least=U64_MAX - 2)
    with pytest.raises(CounterExhausted):
        store.signing_counters.reserve_block(TCOS, 3)
    assert list(store.signing_counters.reserve_block(TCOS, 2)) == [U64_MAX - 1, U64_MAX]


@pytest.mark.parametrize("count", [0, -1, 1_000_001])
def test_a_block_size_out_of_range_is_a_value_error(store: Store, count: int) -> None:
    with pytest.raises(ValueError):
        store.signing_counters.reserve_block(TCOS, count)


def test_a_savepoint_that_raises_takes_back_only_its_own_writes(store: Store) -> None:
    with store.transaction() as tx:
        tx.parties.add_party(Party("KEPT", "kept"))
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.parties.add_party(Party("UNDONE", "undone"))
            raise RuntimeError("refused")
        tx.parties.add_party(Party("ALSO", "also kept"))
    assert store.parties.get_party("KEPT").name == "kept"
    assert store.parties.get_party("ALSO").name == "also kept"
    with pytest.raises(Exception, match="UNDONE"):
        store.parties.get_party("UNDONE")


def test_a_transaction_without_the_flush_commits_like_any_other(store: Store) -> None:
    with store.transaction(durable=False) as tx:
        tx.parties.add_party(Party("RELAXED", "relaxed"))
    with store.transaction() as tx:  # the next (durable) one on the pooled connection
        tx.parties.add_party(Party("DURABLE", "durable"))
    assert store.parties.get_party("RELAXED").name == "relaxed"
    assert store.parties.get_party("DURABLE").name == "durable"


def test_sqlite_write_transactions_set_their_own_flush_level(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        for durable, level in ((False, 1), (True, 2), (False, 1)):  # NORMAL, FULL
            with write_transaction(store.engine, durable=durable) as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
