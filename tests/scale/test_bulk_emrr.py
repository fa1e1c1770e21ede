"""The synthetic estate loader and the EMRR counters, at a few thousand meters."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import text

from openecos.migration import MigrationStatus, report_from_counts
from openecos.store import emrr
from openecos.store.bulk import EstateSpec, load_estate
from tests.scale.conftest import open_estate_store

pytestmark = pytest.mark.postgres

SPEC = EstateSpec(meters=3_000, suppliers=4, migration_days=10)


def _load(url: str, spec: EstateSpec = SPEC, *, defer_indexes: bool = True):  # type: ignore[no-untyped-def]
    store = open_estate_store(url, spec)
    with store.engine.begin() as conn:
        load_estate(conn, spec, defer_indexes=defer_indexes)
    return store


@pytest.mark.parametrize("defer_indexes", [True, False])
def test_loaded_estate_has_every_row_and_keeps_its_indexes_and_keys(
    pg_url: str, defer_indexes: bool
) -> None:
    store = _load(pg_url, defer_indexes=defer_indexes)
    with store.engine.connect() as conn:
        for table in ("devices", "registrations", "migration_meters", "emrr_attribution"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == SPEC.meters
        names = set(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            ).scalars()
        )
        fks = conn.execute(
            text(
                "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE c.contype = 'f' AND n.nspname = current_schema()"
            )
        ).scalar()
    assert {"ix_devices_mpxn", "ix_migration_meters_status_next_at"} <= names
    assert fks is not None and fks >= 5
    store.close()


def test_loaded_rows_are_records_the_engine_can_read(pg_url: str) -> None:
    from openecos.store.schema import migration_meters

    store = _load(pg_url)
    with store.engine.connect() as conn:
        rows = conn.execute(migration_meters.select()).all()
    # Stored by member name (schema migration 5); the column type may hand back either form.
    statuses = Counter(
        s if isinstance(s, MigrationStatus) else MigrationStatus[s]
        for s in (r.status for r in rows)
    )
    assert set(statuses) == {s for s, _ in SPEC.mix}
    store.close()


def test_counters_equal_a_full_recount_after_the_load(pg_url: str) -> None:
    store = _load(pg_url)
    with store.engine.connect() as conn:
        counted, daily = emrr.emrr_rows(conn)
        assert (counted, daily) == emrr.recount_rows(conn)
    report = report_from_counts(counted, daily, as_of=SPEC.as_of.date())
    assert report.counts.estate == SPEC.meters
    assert len({r.supplier for r in counted}) == SPEC.suppliers
    assert all(d.day < SPEC.as_of.date() and d.day >= date(2027, 5, 22) for d in daily)
    store.close()
