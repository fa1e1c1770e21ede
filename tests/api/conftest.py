"""API fixtures: the service tests' ``env`` (SQLite and PostgreSQL, a fresh store per test)."""

from tests.service.conftest import env  # noqa: F401  (fixture)
