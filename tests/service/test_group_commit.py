"""Group commit: many threads' writes share transactions, each answered only once committed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from openecos.service.group_commit import GroupCommit
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
