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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from openecos.store import Repositories, Store

_T = TypeVar("_T")


class _Entry(Generic[_T]):
    __slots__ = ("done", "error", "value", "write")

    def __init__(self, write: Callable[[Repositories], _T]) -> None:
        self.write = write
        self.value: _T | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Shares transactions between concurrent writers (see the module docstring)."""

    def __init__(self, store: Store, *, max_batch: int = 256) -> None:
        self._store = store
        self._max_batch = max_batch
        self._condition = threading.Condition()
        self._queue: list[_Entry[object]] = []
        self._leading = False

    def run(self, write: Callable[[Repositories], _T]) -> _T:
        """Runs ``write`` in a shared transaction; returns its value once committed."""
        entry: _Entry[_T] = _Entry(write)
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
            try:
                self._commit(batch)
            finally:
                with self._condition:
                    self._leading = False
                    self._condition.notify_all()
        if entry.error is not None:
            raise entry.error
        return entry.value  # type: ignore[return-value]

    def _commit(self, batch: list[_Entry[object]]) -> None:
        try:
            with self._store.transaction() as tx:
                for entry in batch:
                    try:
                        with tx.savepoint():
                            entry.value = entry.write(tx)
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
