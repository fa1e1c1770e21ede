"""End-to-end fixtures: the service over real HTTP on SQLite and on PostgreSQL.

``db_url`` and ``env`` are the service tests' (function scope: a fresh store
per test). ``served`` is one world and one running service per module and
database, for the table-driven tests whose rows share them (each row uses its
own meters or takes its own before/after snapshot).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openecos.service import ManualClock, ServiceRuntime
from tests.databases import DATABASES, database_url
from tests.e2e.world import NOW, make_world
from tests.service.conftest import env  # noqa: F401  (fixture)
from tests.service.env import Environment, running_server, runtime_for


@pytest.fixture(scope="module", params=DATABASES)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with database_url(request, tmp_path_factory.mktemp("e2e")) as url:
        yield url


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
def world(tmp_path: Path, db_url: str) -> Environment:
    return make_world(tmp_path, db_url)
