"""Store fixtures: every test runs on SQLite (a temp file) and on PostgreSQL.

Each PostgreSQL test gets a schema of its own (``search_path`` set through
the URL's ``options``), dropped afterwards, so tests are isolated and can
run in parallel. The URL is a plain string, so child processes can open it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from openecos.store import Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(_plain(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={name}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_plain(base), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened
