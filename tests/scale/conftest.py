"""Scale-path fixtures: a PostgreSQL schema of its own per test, dropped afterwards.

The code paths are those of the 30-million-meter benchmark (bench/emrr_scale.py)
at a few thousand meters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from openecos.store import Store, emrr
from openecos.store.bulk import EstateSpec, add_participants


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(_plain(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={name}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_plain(postgres_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def open_estate_store(url: str, spec: EstateSpec) -> Store:
    """A migrated store with EMRR installed and the spec's participants."""
    store = Store.open(url)
    with store.engine.begin() as conn:
        emrr.install(conn)
    with store.transaction() as repos:
        add_participants(repos, spec)
    return store
