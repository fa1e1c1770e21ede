"""Service fixtures: each test runs on SQLite (a temp file) and on PostgreSQL (own schema)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openecos.store import CosCredentialState
from tests.service.env import ECOS_METER, TCOS_METER, Environment, make_environment


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Environment:
    return make_environment(
        tmp_path, db_url, {TCOS_METER: CosCredentialState.TCOS, ECOS_METER: CosCredentialState.ECOS}
    )
