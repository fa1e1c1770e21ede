"""Two service processes on one PostgreSQL never send one request twice.

Both run ``openecos serve`` with workers; requests are posted to each in
turn. Work items are claimed with ``FOR UPDATE SKIP LOCKED`` and leases, the
meters' answers are taken the same way, so every request gets exactly one
signed command and every meter executes exactly one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from openecos.smki.sandbox import SUPPLIER_B
from openecos.store import CommandStatus, CosCredentialState, Store
from tests.service.env import (
    SPARE_METERS,
    Environment,
    make_environment,
    post,
    request_id,
    serve_process,
    signed_6_23,
    status_of,
    wait_until,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_env(tmp_path: Path, postgres_url: str) -> Iterator[Environment]:
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    name = f"t_{uuid.uuid4().hex[:20]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    url = (
        make_url(postgres_url)
        .update_query_dict({"options": f"-csearch_path={name}"})
        .render_as_string(hide_password=False)
    )
    try:
        meters = {m: CosCredentialState.TCOS for m in SPARE_METERS[:8]}
        meters.update({m: CosCredentialState.ECOS for m in SPARE_METERS[8:]})
        yield make_environment(tmp_path, url, meters)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_two_processes_share_the_work_and_send_each_request_once(pg_env: Environment) -> None:
    with (
        serve_process(pg_env, worker_id="one") as (_, first),
        serve_process(pg_env, worker_id="two") as (_, second),
    ):
        ids = []
        for counter, meter in enumerate(SPARE_METERS, start=1):
            client = first if counter % 2 else second
            assert post(client, signed_6_23(meter, counter)) == "I99"
            ids.append(request_id(SUPPLIER_B, meter, counter))
        wait_until(lambda: all(status_of(first, rid) == "Completed" for rid in ids), timeout=60)

    with Store.open(pg_env.store_url) as store:
        counters = []
        for rid in ids:
            commands = store.commands.for_request(rid)
            assert [c.status for c in commands] == [CommandStatus.SUCCEEDED], rid
            counters.append((commands[0].signer, commands[0].originator_counter))
            prepared = [
                e for e in store.audit.entries(subject=rid) if e.action == "command.prepared"
            ]
            assert len(prepared) == 1, rid
        assert len(set(counters)) == len(counters)
        for meter in SPARE_METERS:
            assert len(store.estate.outputs(meter)) == 1, meter
