"""Audit log: append-only, refused by the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from openecos.store import InvalidRecord, Store, schema
from tests.store.factories import T0


def test_entries_append_and_read_back_in_order(store: Store) -> None:
    first = store.audit.append(at=T0, actor="api", action="request.received", subject="r1")
    second = store.audit.append(
        at=T0, actor="worker-1", action="command.sent", subject="r1", details={"counter": 42}
    )
    assert store.audit.entries() == [first, second]
    assert store.audit.entries(subject="r1", after_id=first.entry_id) == [second]


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_database_refuses_update_and_delete(store: Store, statement: str) -> None:
    store.audit.append(at=T0, actor="api", action="a", subject="s", details={"k": "v"})
    table = schema.audit_log
    sql = update(table).values(actor="forger") if statement == "update" else delete(table)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sql)
    assert [e.actor for e in store.audit.entries()] == ["api"]


def test_details_must_be_json(store: Store) -> None:
    with pytest.raises(InvalidRecord):
        store.audit.append(at=T0, actor="a", action="a", subject="s", details={"x": object()})
    with pytest.raises(InvalidRecord):
        store.audit.append(at=T0, actor="a", action="a", subject="s", details={"x": float("nan")})
