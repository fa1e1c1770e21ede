"""The two databases every store-backed test runs on, one helper for both.

SQLite is a file in the test's temporary directory. PostgreSQL is the server
at ``postgres_url`` with a schema of the test's own (``search_path`` set through
the URL's ``options``), dropped afterwards, so tests are isolated and can run
in parallel; the URL is a plain string, so child processes can open it too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

#: ``params`` for a fixture that runs each test on both databases.
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections live in a new schema, dropped on exit."""
    name = f"t_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(_plain(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield (
            make_url(base_url)
            .update_query_dict({"options": f"-csearch_path={name}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_plain(base_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def database_url(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """The URL for the database the fixture's ``request.param`` names."""
    if request.param == "sqlite":
        yield f"sqlite:///{directory / 'store.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url
