"""End-to-end fixtures: the service over real HTTP on SQLite and on PostgreSQL.

``db_url`` and ``env`` are the service tests' (function scope: a fresh store
per test). ``served`` is one world and one running service per module and
database, for the table-driven tests whose rows share them (each row uses its
own meters or takes its own before/after snapshot).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from openecos.service import ManualClock, ServiceRuntime
from tests.e2e.world import NOW, make_world
from tests.service.conftest import db_url, env  # noqa: F401  (fixtures)
from tests.service.env import Environment, running_server, runtime_for


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'store.db'}"
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


@dataclass(frozen=True)
class Served:
    env: Environment
    runtime: ServiceRuntime
    client: httpx.Client
    clock: ManualClock


@pytest.fixture(scope="module")
def served(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    world = make_world(tmp_path_factory.mktemp("world"), module_db_url)
    clock = ManualClock(NOW)
    runtime = runtime_for(world, clock)
    try:
        with running_server(runtime) as client:
            yield Served(world, runtime, client, clock)
    finally:
        runtime.close()


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Environment:  # noqa: F811
    return make_world(tmp_path, db_url)
