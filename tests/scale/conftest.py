"""Scale-path fixtures: a PostgreSQL schema of its own per test, dropped afterwards.

The code paths are those of the 30-million-meter benchmark (bench/emrr_scale.py)
at a few thousand meters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openecos.store import Store, emrr
from openecos.store.bulk import EstateSpec, add_participants
from tests.databases import postgres_schema


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with postgres_schema(postgres_url) as url:
        yield url


def open_estate_store(url: str, spec: EstateSpec) -> Store:
    """A migrated store with EMRR installed and the spec's participants."""
    store = Store.open(url)
    with store.engine.begin() as conn:
        emrr.install(conn)
    with store.transaction() as repos:
        add_participants(repos, spec)
    return store
