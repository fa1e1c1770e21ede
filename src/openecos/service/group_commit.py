"""Group commit: the writes of many threads in one transaction, committed once.

Theory of operation. A durable commit costs a disk flush (``fsync``; SQLite
with ``synchronous=FULL``, PostgreSQL with ``synchronous_commit=on``), a few
hundred microseconds that no amount of CPU buys back, and on SQLite only one
writer runs at a time. When many API threads each record one request, each
paying its own flush caps the service at a few hundred requests per second.

:meth:`GroupCommit.run` queues the caller's write function. The first caller
to find no commit under way becomes the *leader*: it takes everything queued
(up to ``max_batch``), runs each write in its own SAVEPOINT inside one
transaction, commits, and wakes the others; callers that queued while a
commit was under way wait for the next one, whose leader is one of them. So
a lone request is committed at once (no timer, no added latency), and under
load one flush carries as many requests as arrived during the previous one.

Guarantees, per caller, exactly as if it had run its own transaction:

- ``run`` returns only after the transaction holding its writes committed;
  a caller never acknowledges anything that is not durable;
- a write function that raises has its SAVEPOINT rolled back and its
  exception re-raised in its own thread; the other writes are unaffected;
- if the commit itself fails, every caller of that batch gets the error and
  none of the batch's writes happened.

Writes run in the leader's thread, in queue order: a write function must
only use the repositories it is given (no thread-local state).

Set-wise batches (:class:`SetWise`, :meth:`GroupCommit.submit`). A caller
whose writes have one shape (intake: a counter, a request, a work item and
an audit entry) hands over a value instead of a function, and the leader
writes the whole batch with a few set-wise statements
(:attr:`SetWise.write_many`: one statement per table instead of a SAVEPOINT
and several statements per caller). ``write_many`` checks what it can in
Python first and returns, per value, None or the refusal (an exception) of
that value alone, having written nothing for it. If it raises instead (a
write the database refused, which on PostgreSQL ends the transaction), the
batch is written again in a new transaction the per-caller way
(:attr:`SetWise.write_one` in a SAVEPOINT each), so a failing value is
isolated only when one fails. The guarantees above hold for both paths.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from openecos.store import Repositories, Store

_T = TypeVar("_T")
_NO_ITEM: Any = object()


@dataclass(frozen=True, slots=True)
class SetWise:
    """How to write a batch of values set-wise (see the module docstring)."""

    write_many: Callable[[Repositories, Sequence[Any]], Sequence[BaseException | None]]
    """Writes the values; returns per value None (written) or its refusal (nothing written)."""
    write_one: Callable[[Repositories, Any], None]
    """Writes one value (in a SAVEPOINT of its own) or raises its refusal."""


class _Entry(Generic[_T]):
    __slots__ = ("done", "error", "future", "item", "value", "write")

    def __init__(self, write: Callable[[Repositories], _T] | None, item: Any = _NO_ITEM) -> None:
        self.write = write
        self.item = item
        self.value: _T | None = None
        self.error: BaseException | None = None
        self.done = False
        self.future: Future[None] | None = None


class GroupCommit:
    """Shares transactions between concurrent writers (see the module docstring)."""

    def __init__(
        self, store: Store, *, max_batch: int = 256, set_wise: SetWise | None = None
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._set_wise = set_wise
        self._condition = threading.Condition()
        self._queue: list[_Entry[object]] = []
        self._leading = False
        self._committer: threading.Thread | None = None

    def run(self, write: Callable[[Repositories], _T]) -> _T:
        """Runs ``write`` in a shared transaction; returns its value once committed."""
        return self._wait(_Entry(write))

    def submit(self, item: Any) -> None:
        """Writes ``item`` with the :class:`SetWise` writer; returns once committed.

        Raises the item's own refusal, or the commit's failure.
        """
        if self._set_wise is None:
            raise RuntimeError("submit() needs a GroupCommit made with set_wise")
        self._wait(_Entry(None, item))

    def submit_later(self, item: Any) -> Future[None]:
        """:meth:`submit` without waiting: a future resolved once ``item`` is committed
        (or failed with its refusal, or the commit's failure).

        For an event loop, which must not wait on a disk flush: a committer thread
        of the group's own leads the commits that no waiting caller leads.
        """
        if self._set_wise is None:
            raise RuntimeError("submit_later() needs a GroupCommit made with set_wise")
        entry: _Entry[object] = _Entry(None, item)
        entry.future = Future()
        with self._condition:
            self._queue.append(entry)
            if self._committer is None:
                self._committer = threading.Thread(
                    target=self._commit_forever, name="openecos-group-commit", daemon=True
                )
                self._committer.start()
            self._condition.notify_all()
        return entry.future

    def _commit_forever(self) -> None:
        while True:
            with self._condition:
                while not self._queue or self._leading:
                    self._condition.wait()
                self._leading = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._lead(batch)

    def _lead(self, batch: list[_Entry[object]]) -> None:
        """Commits ``batch`` (the caller set ``_leading``), then lets the others in."""
        try:
            self._commit(batch)
        finally:
            with self._condition:
                self._leading = False
                self._condition.notify_all()
            for entry in batch:
                if entry.future is not None:
                    if entry.error is not None:
                        entry.future.set_exception(entry.error)
                    else:
                        entry.future.set_result(None)

    def _wait(self, entry: _Entry[_T]) -> _T:
        with self._condition:
            self._queue.append(entry)  # type: ignore[arg-type]
        while True:
            with self._condition:
                while not entry.done and self._leading:
                    self._condition.wait()
                if entry.done:
                    break
                self._leading = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._lead(batch)
        if entry.error is not None:
            raise entry.error
        return entry.value  # type: ignore[return-value]

    def _commit(self, batch: list[_Entry[object]]) -> None:
        items = [e for e in batch if e.item is not _NO_ITEM]
        if items and self._set_wise is not None and self._commit_set_wise(items):
            batch = [e for e in batch if e.item is _NO_ITEM]
            if not batch:
                return
        self._commit_each(batch)

    def _commit_set_wise(self, batch: list[_Entry[object]]) -> bool:
        """The batch's values in a few set-wise statements; False: write them one by one."""
        assert self._set_wise is not None
        refused: BaseException | None = None
        try:
            with self._store.transaction() as tx:
                try:
                    outcomes = self._set_wise.write_many(tx, [e.item for e in batch])
                except Exception as exc:  # a write refused: isolate it the per-caller way
                    refused = exc
                    raise
        except BaseException as exc:
            if refused is not None:
                return False
            for entry in batch:  # the commit failed: no write of the batch happened
                entry.error = exc
                entry.done = True
            return True
        for entry, outcome in zip(batch, outcomes, strict=True):
            entry.error = outcome
            entry.done = True
        return True

    def _commit_each(self, batch: list[_Entry[object]]) -> None:
        set_wise = self._set_wise
        try:
            with self._store.transaction() as tx:
                for entry in batch:
                    try:
                        with tx.savepoint():
                            if entry.write is not None:
                                entry.value = entry.write(tx)
                            else:
                                assert set_wise is not None
                                set_wise.write_one(tx, entry.item)
                    except Exception as exc:  # that caller's own refusal; the others go on
                        entry.error = exc
        except BaseException as exc:  # the commit failed: no write of the batch happened
            for entry in batch:
                entry.value = None
                if entry.error is None:
                    entry.error = exc
        finally:
            for entry in batch:
                entry.done = True
