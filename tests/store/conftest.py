"""Store fixtures: every test runs on SQLite (a temp file) and on PostgreSQL.

Each PostgreSQL test gets a schema of its own (``search_path`` set through
the URL's ``options``), dropped afterwards, so tests are isolated and can
run in parallel. The URL is a plain string, so child processes can open it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from openecos.store import Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened
