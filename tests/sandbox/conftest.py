"""One small sandbox per session, shared by the tests that only read it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from openecos.sandbox import Sandbox, create_sandbox, load_sandbox

METERS = 200
ECOS_FRACTION = 0.25
SEED = 11
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sandbox") / "sbx"
    create_sandbox(directory, meters=METERS, ecos_fraction=ECOS_FRACTION, seed=SEED, now=CREATED)
    return directory


@pytest.fixture(scope="session")
def loaded(sandbox_dir: Path) -> Sandbox:
    return load_sandbox(sandbox_dir)
