"""Functions run in child processes by the concurrency tests (spawned, so importable)."""

from __future__ import annotations

import signal
from multiprocessing.connection import Connection
from typing import Any

from openecos.eui import Eui64
from openecos.store import Store, migrate, open_engine


def migrate_once(url: str, start: Any) -> int:
    start.wait()
    engine = open_engine(url)
    try:
        return migrate(engine)
    finally:
        engine.dispose()


def reserve_many(url: str, entity_hex: str, count: int, start: Any) -> list[int]:
    store = Store.open(url, run_migrations=False)
    entity = Eui64.parse(entity_hex)
    start.wait()
    try:
        return [store.signing_counters.reserve(entity) for _ in range(count)]
    finally:
        store.close()


def reserve_then_hang(url: str, entity_hex: str, pipe: Connection) -> None:
    """Reserves one counter, reports it, then waits to be killed (a crash after reserve)."""
    store = Store.open(url, run_migrations=False)
    value = store.signing_counters.reserve(Eui64.parse(entity_hex))
    pipe.send(value)
    signal.pause()
