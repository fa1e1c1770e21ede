"""A big migration with 5% injected meter faults ends with every meter named, and EMRR adds up.

20,000 meters by default (``OPENECOS_MIGRATION_METERS`` changes it; the
report gives the 100,000-meter figure), on SQLite, with the virtual clock and
the real cryptography on both sides: each 0x0106 is signed by the TCoS key
and MACed by the ACB key, each simulated meter checks MAC, signature and the
ECoS certificate and signs its answer, the engine verifies every answer and
MAC-checks every credentials read. Faults: lost answers 1.5%, busy 1.5%,
truncated answers 1%, reboots losing the command 0.5%, meters breaking for
good 0.1%, damaged signatures 0.4%. About 1% of meters are born ECoS and 1.1%
already on ECoS.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from openecos.migration import IneligibleReason, MigrationStatus
from openecos.network import MeterFaults
from openecos.service.migration_delivery import FaultPlan
from openecos.store import CosCredentialState
from tests.migration_engine.world import drive, make_world

S = MigrationStatus
METERS = int(os.environ.get("OPENECOS_MIGRATION_METERS", "20000"))
FAULTS = FaultPlan(
    MeterFaults(no_response=0.015, busy=0.015, malformed_response=0.01, reboot=0.005, broken=0.001),
    bad_signature=0.004,
    seed=7,
)


@pytest.mark.slow
def test_every_meter_ends_migrated_or_an_exception_and_emrr_adds_up(tmp_path: Path) -> None:
    born = set(range(0, METERS, 97))
    already = set(range(1, METERS, 89)) - born
    world = make_world(
        tmp_path,
        f"sqlite:///{tmp_path / 'store.db'}",
        meters=METERS,
        born_ecos=born,
        ecos=already,
        fast=True,
    )
    world.configure()
    world.start()
    engine = world.engine(plan=FAULTS, batch=512)
    drive(world, engine)

    counts = world.mig.counts_by_status()
    assert sum(counts.values()) == METERS
    assert set(counts) <= {S.MIGRATED, S.EXCEPTION, S.INELIGIBLE}
    assert counts[S.INELIGIBLE] == len(born) + len(already)
    # Every exception names why, with its error class, and is due for review.
    exceptions = world.desk().exceptions(limit=METERS)
    assert len(exceptions) == counts.get(S.EXCEPTION, 0) > 0
    assert all(r.error is not None and r.next_at is not None for r in exceptions)
    # Faults happened at about the planned rate, and were resolved.
    audit = Counter(e.action for e in world.store.audit.entries(limit=10 * METERS))
    assert audit["migration.answer-lost"] > 0 and audit["migration.read"] > 0
    assert audit["migration.command-sent"] >= counts[S.MIGRATED]

    # EMRR: the categories add up to the estate, overall and per supplier.
    overall, *suppliers = world.desk().emrr_reports()
    assert overall.counts.estate == METERS
    assert sum(r.counts.estate for r in suppliers) == METERS
    assert [r.supplier for r in suppliers] == ["A", "B"]
    assert overall.counts.migrated == counts[S.MIGRATED]
    assert overall.counts.exceptions == counts.get(S.EXCEPTION, 0)
    reasons = dict(overall.counts.ineligible_by_reason)
    assert reasons[IneligibleReason.BORN_ECOS] == len(born)
    assert reasons[IneligibleReason.ALREADY_ECOS] == len(already)
    assert overall.counts.remaining == counts.get(S.EXCEPTION, 0)
    # The inventory agrees: ECoS = migrated + born ECoS + already ECoS.
    state = world.store.devices.count_by_credential_state()
    assert state[CosCredentialState.ECOS] == counts[S.MIGRATED] + len(born) + len(already)
    world.close()
