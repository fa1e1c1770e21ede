"""Fixtures shared by the whole suite.

Missing parts (the reference folder, PostgreSQL, SoftHSM2) skip the tests that
need them with a clear reason on a user's machine, and fail them in CI, where
.ci/run sets OPENECOS_REQUIRE_{REFERENCE,POSTGRES,SOFTHSM}=1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import DATABASES, database_url
from tests.reference import REFERENCE_DIR, missing


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        missing("REFERENCE", f"reference data not found at {REFERENCE_DIR}")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL that answers, from OPENECOS_PG_URL or the local default."""
    url = os.environ.get("OPENECOS_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach it is a reason to skip or fail
        missing("POSTGRES", f"PostgreSQL not reachable at {url}: {exc}")
    return url


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes it runs on SQLite and on PostgreSQL (a schema of its own)."""
    with database_url(request, tmp_path) as url:
        yield url
