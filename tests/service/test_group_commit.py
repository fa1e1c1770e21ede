"""Group commit: many threads' writes share transactions, each answered only once committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from openecos.service.group_commit import GroupCommit, SetWise
from openecos.store import NotFound, Party, Repositories, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'g.db'}") as opened:
        yield opened


def test_every_writer_returns_after_its_write_is_committed(store: Store, tmp_path: Path) -> None:
    commits = GroupCommit(store)
    seen: dict[str, str] = {}
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            commits.run(lambda tx: tx.parties.add_party(Party(f"P{i}", f"party {i}")))
            with Store.open(f"sqlite:///{tmp_path / 'g.db'}") as other:
                seen[f"P{i}"] = other.parties.get_party(f"P{i}").name
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seen == {f"P{i}": f"party {i}" for i in range(24)}


def test_a_refused_writer_gets_its_own_error_and_the_others_are_kept(store: Store) -> None:
    commits = GroupCommit(store)
    gate = threading.Barrier(8)
    outcomes: dict[int, str] = {}

    def write(i: int, tx: Repositories) -> str:
        tx.parties.add_party(Party(f"Q{i}", "written"))
        if i % 2:
            raise LookupError(f"refused {i}")
        return f"ok {i}"

    def writer(i: int) -> None:
        gate.wait()
        try:
            outcomes[i] = commits.run(lambda tx: write(i, tx))
        except LookupError as exc:
            outcomes[i] = str(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == {i: (f"refused {i}" if i % 2 else f"ok {i}") for i in range(8)}
    for i in range(8):
        if i % 2:
            with pytest.raises(NotFound):
                store.parties.get_party(f"Q{i}")
        else:
            assert store.parties.get_party(f"Q{i}").name == "written"


class _CommitFails:
    """A store whose transactions roll back at the end, as if the commit had failed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def transaction(self) -> Iterator[Repositories]:
        with self.store.transaction() as tx:
            yield tx
            raise OSError("the disk refused the commit")


def test_a_failed_commit_fails_every_writer_of_the_batch(store: Store) -> None:
    commits = GroupCommit(_CommitFails(store))  # type: ignore[arg-type]
    gate = threading.Barrier(4)
    outcomes: list[str] = []

    def writer(i: int) -> None:
        gate.wait()
        try:
            commits.run(lambda tx: tx.parties.add_party(Party(f"R{i}", "lost")))
            outcomes.append("returned")
        except OSError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["the disk refused the commit"] * 4
    for i in range(4):
        with pytest.raises(NotFound):
            store.parties.get_party(f"R{i}")


def _add_parties_set_wise(tx: Repositories, names: Sequence[str]) -> list[BaseException | None]:
    """A set-wise writer: refuses names starting with "x" itself, writes the rest together."""
    outcomes: list[BaseException | None] = []
    for name in names:
        if name.startswith("x"):
            outcomes.append(LookupError(f"refused {name}"))
        else:
            outcomes.append(None)
            tx.parties.add_party(Party(name, "set-wise"))
    return outcomes


def _add_party(tx: Repositories, name: str) -> None:
    if name.startswith("x"):
        raise LookupError(f"refused {name}")
    tx.parties.add_party(Party(name, "one by one"))


def _submit_together(commits: GroupCommit, names: list[str]) -> dict[str, str]:
    gate = threading.Barrier(len(names))
    outcomes: dict[str, str] = {}

    def writer(name: str) -> None:
        gate.wait()
        try:
            commits.submit(name)
            outcomes[name] = "ok"
        except Exception as exc:  # the value's own refusal, or the commit's failure
            outcomes[name] = str(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_set_wise_batch_refuses_values_alone_and_keeps_the_others(store: Store) -> None:
    commits = GroupCommit(store, set_wise=SetWise(_add_parties_set_wise, _add_party))
    outcomes = _submit_together(commits, ["a1", "x2", "a3", "x4"])
    assert outcomes == {"a1": "ok", "x2": "refused x2", "a3": "ok", "x4": "refused x4"}
    assert store.parties.get_party("a1").name == "set-wise"
    for name in ("x2", "x4"):
        with pytest.raises(NotFound):
            store.parties.get_party(name)


def test_a_write_the_database_refuses_sends_the_batch_one_by_one(store: Store) -> None:
    # "dup" exists: the set-wise insert fails, and the per-value path isolates it.
    store.parties.add_party(Party("dup", "first"))
    commits = GroupCommit(store, set_wise=SetWise(_add_parties_set_wise, _add_party))
    outcomes = _submit_together(commits, ["b1", "dup", "b3"])
    assert outcomes["b1"] == "ok" and outcomes["b3"] == "ok"
    assert "already" in outcomes["dup"]
    assert store.parties.get_party("b1").name == "one by one"
    assert store.parties.get_party("dup").name == "first"


def test_a_failed_commit_fails_every_set_wise_value(store: Store) -> None:
    commits = GroupCommit(
        _CommitFails(store),  # type: ignore[arg-type]
        set_wise=SetWise(_add_parties_set_wise, _add_party),
    )
    outcomes = _submit_together(commits, ["c1", "c2", "x3"])
    assert outcomes["c1"] == outcomes["c2"] == "the disk refused the commit"
    for name in ("c1", "c2"):
        with pytest.raises(NotFound):
            store.parties.get_party(name)


def test_submit_later_resolves_only_once_committed_with_each_values_outcome(
    store: Store, tmp_path: Path
) -> None:
    commits = GroupCommit(store, set_wise=SetWise(_add_parties_set_wise, _add_party))
    futures = {name: commits.submit_later(name) for name in ("d1", "x2", "d3")}
    assert futures["d1"].result(timeout=30) is None
    assert futures["d3"].result(timeout=30) is None
    with pytest.raises(LookupError, match="refused x2"):
        futures["x2"].result(timeout=30)
    with Store.open(f"sqlite:///{tmp_path / 'g.db'}") as other:  # visible: committed
        assert other.parties.get_party("d1").name == "set-wise"
        assert other.parties.get_party("d3").name == "set-wise"
