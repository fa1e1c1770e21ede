"""The demo's burst: the mix of kinds, counters in sending order, replays last."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from openecos.duis import RequestId
from openecos.sandbox import create_sandbox, load_sandbox
from openecos.sandbox.burst import UNKNOWN_DEVICE, BurstKind, plan_burst


def test_a_burst_mixes_every_kind_with_counters_rising_in_sending_order(tmp_path: Path) -> None:
    create_sandbox(tmp_path / "s", meters=40, seed=3)
    sandbox = load_sandbox(tmp_path / "s", meters=False)
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    burst = plan_burst(sandbox, valid=6, each_invalid=2, now=now, first_counter=1000)

    kinds = Counter(r.kind for r in burst)
    assert kinds[BurstKind.VALID] == 6
    assert all(kinds[k] == 2 for k in BurstKind if k is not BurstKind.VALID)

    first_sendings = [r for r in burst if r.kind is not BurstKind.REPLAYED]
    replays = [r for r in burst if r.kind is BurstKind.REPLAYED]
    assert burst[-len(replays) :] == replays  # replays come after everything else
    sent = {(r.request_id, r.document) for r in first_sendings}
    assert all((r.request_id, r.document) in sent for r in replays)

    last: dict[str, int] = {}
    for request in first_sendings:
        rid = RequestId.parse(request.request_id)
        assert rid.counter > last.get(rid.originator.hex, 0)  # never seen as reordered
        last[rid.originator.hex] = rid.counter
    assert {r.device for r in burst if r.kind is BurstKind.UNKNOWN_DEVICE} == {UNKNOWN_DEVICE}


def test_the_gaining_supplier_is_registered_only_where_the_request_deserves_it(
    tmp_path: Path,
) -> None:
    create_sandbox(tmp_path / "s", meters=40, seed=3)
    sandbox = load_sandbox(tmp_path / "s", meters=False)
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    burst = plan_burst(sandbox, valid=4, each_invalid=1, now=now, first_counter=1)
    with sandbox.open_store() as store:
        for request in burst:
            if request.kind not in (BurstKind.VALID, BurstKind.NOT_REGISTERED):
                continue
            device = store.devices.get(request.device)
            assert device.mpxn is not None
            supplier = store.registrations.registered_supplier(device.mpxn, now)
            assert supplier is not None
            registered = supplier.user_id == request.gaining_user
            assert registered == (request.kind is BurstKind.VALID)
