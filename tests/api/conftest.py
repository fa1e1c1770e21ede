"""Service fixtures: each test runs on SQLite (a temp file) and on PostgreSQL (own schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from openecos.store import CosCredentialState
from tests.service.env import ECOS_METER, TCOS_METER, Environment, make_environment


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
def env(tmp_path: Path, db_url: str) -> Environment:
    return make_environment(
        tmp_path, db_url, {TCOS_METER: CosCredentialState.TCOS, ECOS_METER: CosCredentialState.ECOS}
    )
