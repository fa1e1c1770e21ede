"""EMRR counters stay exact when many transactions change meters at once (PostgreSQL).

Writers race on the same meters (deadlocks and deliberate rollbacks
included), an attributor moves meters between suppliers, and a compactor
folds the ledger throughout; afterwards the counters must equal a full
recount, and the engine's own live-join figures once attribution is
refreshed.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from openecos.eui import Eui64
from openecos.migration import MigrationStatus
from openecos.store import Store, emrr
from openecos.store.bulk import EstateSpec, load_estate
from openecos.store.migration import migration_repository
from tests.scale.conftest import open_estate_store

pytestmark = pytest.mark.postgres

SPEC = EstateSpec(meters=400, suppliers=3, migration_days=5)
NOW = SPEC.as_of
_STATES = [
    ("ELIGIBLE", None, "ASSESSED_ELIGIBLE", "TCOS"),
    ("INELIGIBLE", "MODEL_NOT_APPROVED", "ASSESSED_INELIGIBLE", "TCOS"),
    ("INELIGIBLE", "COMMAND_IN_FLIGHT", "ASSESSED_INELIGIBLE", "TCOS"),
    ("MIGRATED", None, "CONFIRMED_BY_RESPONSE", "ECOS"),
    ("HELD", None, "HELD_BY_OPERATOR", "TCOS"),
]


def _set_status(conn: object, rng: random.Random, device: str) -> None:
    status, ineligible, reason, credentials = rng.choice(_STATES)
    since = NOW - timedelta(days=rng.randrange(4), hours=rng.randrange(24))
    conn.execute(  # type: ignore[attr-defined]
        text(
            "UPDATE migration_meters SET status = :s, ineligible = :i, reason = :r, "
            "credentials = :c, since = :t, next_at = :n WHERE device = :d"
        ),
        {
            "s": status,
            "i": ineligible,
            "r": reason,
            "c": credentials,
            "t": since,
            "n": None if status == "MIGRATED" else since,
            "d": device,
        },
    )


def _writer(store: Store, seed: int, devices: list[str], errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        for _ in range(60):
            try:
                with store.engine.begin() as conn:
                    for device in rng.sample(devices, rng.randrange(1, 6)):
                        if rng.random() < 0.1:
                            # A meter leaves the engine's table and comes back.
                            conn.execute(
                                text("DELETE FROM migration_meters WHERE device = :d"),
                                {"d": device},
                            )
                            conn.execute(
                                text(
                                    "INSERT INTO migration_meters (device, status, reason, "
                                    "since, next_at, credentials, attempts, total_attempts, "
                                    "reads) VALUES (:d, 'ELIGIBLE', 'ASSESSED_ELIGIBLE', :t, "
                                    ":t, 'TCOS', 0, 0, 0) ON CONFLICT DO NOTHING"
                                ),
                                {"d": device, "t": NOW},
                            )
                        else:
                            _set_status(conn, rng, device)
                    if rng.random() < 0.2:
                        raise _Rollback
            except _Rollback:
                pass
            except DBAPIError as exc:  # deadlock between writers: one rolls back
                if "deadlock" not in str(exc):
                    raise
    except BaseException as exc:
        errors.append(exc)


class _Rollback(Exception):
    pass


def _attributor(store: Store, devices: list[str], errors: list[BaseException]) -> None:
    rng = random.Random(7)
    parties = [SPEC.party(s) for s in range(SPEC.suppliers)] + [None]
    try:
        for _ in range(40):
            chosen = rng.sample(devices, 5)
            try:
                with store.engine.begin() as conn:
                    emrr.attribute(
                        conn, {Eui64(bytes.fromhex(d)): rng.choice(parties) for d in chosen}
                    )
            except DBAPIError as exc:
                if "deadlock" not in str(exc):
                    raise
    except BaseException as exc:
        errors.append(exc)


def _compactor(store: Store, stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        while not stop.is_set():
            with store.engine.begin() as conn:
                emrr.compact(conn)
    except BaseException as exc:
        errors.append(exc)


def test_counters_equal_a_recount_after_concurrent_writers_attribution_and_compaction(
    pg_url: str,
) -> None:
    store = open_estate_store(pg_url, SPEC)
    with store.engine.begin() as conn:
        load_estate(conn, SPEC)
    devices = [SPEC.device(i).hex for i in range(0, SPEC.meters, 4)]  # 100 hot meters
    errors: list[BaseException] = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=_writer, args=(store, seed, devices, errors)) for seed in range(4)
    ]
    workers.append(threading.Thread(target=_attributor, args=(store, devices, errors)))
    compactor = threading.Thread(target=_compactor, args=(store, stop, errors))
    compactor.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    compactor.join()
    assert errors == []
    with store.engine.connect() as conn:
        assert emrr.emrr_rows(conn) == emrr.recount_rows(conn)
        moved = conn.execute(text("SELECT count(*) FROM emrr_counts")).scalar()
    assert moved is not None and moved > 0
    store.close()


def test_counters_agree_with_the_engines_live_join_after_refresh(pg_url: str) -> None:
    store = open_estate_store(pg_url, SPEC)
    with store.engine.begin() as conn:
        load_estate(conn, SPEC)
        # A change of supplier: the first ten MPxNs move to the last supplier's MPIDs.
        conn.execute(
            text(
                "UPDATE registrations SET supplier_mpid = "
                "CASE WHEN length(mpxn) = 13 THEN :e ELSE :g END "
                "WHERE registration_id IN (SELECT registration_id FROM registrations "
                "ORDER BY registration_id LIMIT 10)"
            ),
            {"e": SPEC.electricity_mpid(2), "g": SPEC.gas_mpid(2)},
        )
    with store.engine.begin() as conn:
        moved = emrr.refresh_attribution(conn, NOW)
    assert 0 < moved <= 10
    engine_view = migration_repository(store)
    with store.engine.connect() as conn:
        counts, daily = emrr.emrr_rows(conn)
    assert sorted(counts, key=repr) == sorted(engine_view.count_rows(NOW), key=repr)
    assert sorted(daily, key=repr) == sorted(engine_view.daily_rows(NOW), key=repr)
    store.close()


def test_a_rolled_back_change_leaves_the_counters_as_they_were(pg_url: str) -> None:
    store = open_estate_store(pg_url, SPEC)
    with store.engine.begin() as conn:
        load_estate(conn, SPEC)
    with store.engine.connect() as conn:
        before = emrr.emrr_rows(conn)
    with pytest.raises(_Rollback), store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE migration_meters SET status = 'HELD', ineligible = NULL, "
                "reason = 'HELD_BY_OPERATOR', credentials = 'TCOS', next_at = :t"
            ),
            {"t": NOW},
        )
        assert emrr.emrr_rows(conn) != before
        raise _Rollback
    with store.engine.connect() as conn:
        assert emrr.emrr_rows(conn) == before
    assert MigrationStatus.HELD in {r.status for r in before[0]}
    store.close()


def test_now_is_aware() -> None:
    assert NOW.tzinfo is UTC
