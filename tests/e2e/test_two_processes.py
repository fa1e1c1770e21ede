"""Two ``openecos serve`` processes on one PostgreSQL both do the work, and never twice.

tests/service/test_two_processes.py proves no request is sent twice; this
adds that the work was shared: every command's ``command.prepared`` audit
entry names the worker that signed it, each request has exactly one, and
each process signed some. Requests are posted to the two processes in turn;
each wakes its own worker at once, so both claim work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from openecos.smki.sandbox import SUPPLIER_B
from openecos.store import CommandStatus, CosCredentialState, Store
from tests.databases import postgres_schema
from tests.e2e.world import build_request, next_counter
from tests.service.env import (
    SPARE_METERS,
    Environment,
    make_environment,
    post,
    request_id,
    serve_process,
    status_of,
    wait_until,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_env(tmp_path: Path, postgres_url: str) -> Iterator[Environment]:
    meters = {
        m: CosCredentialState.TCOS if i % 2 else CosCredentialState.ECOS
        for i, m in enumerate(SPARE_METERS)
    }
    with postgres_schema(postgres_url) as url:
        yield make_environment(tmp_path, url, meters)


def test_both_processes_sign_commands_and_each_request_is_signed_once(
    pg_env: Environment,
) -> None:
    with (
        serve_process(pg_env, worker_id="one") as (_, first),
        serve_process(pg_env, worker_id="two") as (_, second),
    ):
        assert first.get("/health").json()["worker_id"] == "one"
        assert second.get("/health").json()["worker_id"] == "two"
        ids = []
        for i, meter in enumerate(SPARE_METERS):
            counter = next_counter()
            assert post(first if i % 2 else second, build_request(meter, counter)) == "I99"
            ids.append(request_id(SUPPLIER_B, meter, counter))
        wait_until(lambda: all(status_of(second, rid) == "Completed" for rid in ids), timeout=60)

    with Store.open(pg_env.store_url) as store:
        signed_by: Counter[str] = Counter()
        counters = []
        for rid in ids:
            prepared = [
                e for e in store.audit.entries(subject=rid) if e.action == "command.prepared"
            ]
            assert len(prepared) == 1, rid
            (command,) = store.commands.for_request(rid)
            assert command.status is CommandStatus.SUCCEEDED
            counters.append((command.signer, command.originator_counter))
            assert prepared[0].details["originator_counter"] == str(command.originator_counter)
            signed_by[str(prepared[0].details["worker"])] += 1
        assert set(signed_by) == {"one", "two"}, signed_by
        assert sum(signed_by.values()) == len(ids)
        assert len(set(counters)) == len(counters)  # no signing counter used twice
        for meter in SPARE_METERS:  # each meter answered exactly one command
            assert len(store.estate.outputs(meter)) == 1, meter
