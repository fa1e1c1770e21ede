"""What operators set for the migration engine, and the run control, kept in the store.

Theory of operation. Two small JSON documents in ``service_state`` (read with
a row lock by their writer, so concurrent writers never lose an update):

- ``migration.settings`` (:class:`MigrationSettings`): capacity per day, per
  hour and in flight (:class:`~openecos.migration.planning.CapacityLimits`),
  the start order (:class:`~openecos.migration.planning.OrderField`), the
  approved manufacturer/model/firmware list
  (:class:`~openecos.migration.eligibility.ApprovedModels`), the device types
  in scope, and the EMEHRA timings every worker must agree on
  (:class:`PolicySettings` → :class:`~openecos.migration.policy.EmehraPolicy`).
- ``migration.run`` (:class:`RunControl`): the run state
  (:class:`~openecos.migration.planning.RunState`, moved only through
  :func:`~openecos.migration.planning.next_run_state`), who moved it and when,
  and the starts counted in the current UTC day and hour (capacity).

Every change is audit-logged in the transaction that makes it. The default
approved list is empty: nothing is migrated until an operator approves the
models suppliers confirmed were tested (docs/ecos-domain.md §C, seed 002).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from openecos.errors import OpenEcosError
from openecos.migration import (
    DEFAULT_ORDER,
    DEFAULT_POLICIES,
    ApprovedModel,
    ApprovedModels,
    CapacityLimits,
    EligibilityConfig,
    EmehraPolicy,
    OrderField,
    RetryPolicy,
    RunEvent,
    RunState,
    next_run_state,
)
from openecos.store import DeviceType, Repositories, Store

SETTINGS_DOCUMENT = "migration.settings"
RUN_DOCUMENT = "migration.run"
#: Order fields the engine can sort by in SQL: every one (region is ``devices.region``, the
#: supplier the one EMRR attributes the meter to).
SQL_ORDER_FIELDS = frozenset(OrderField)


class SettingsInvalid(OpenEcosError, ValueError):
    """A settings value an operator gave that the engine cannot use."""


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The EMEHRA timings (seconds) and a scale on every retry backoff (tests shrink it)."""

    response_timeout: float = 600.0
    read_delay: float = 900.0
    review_interval: float = 2 * 86400.0
    reassess_interval: float = 3600.0
    backoff_scale: float = 1.0
    max_total_attempts: int = 8
    seed: int = 0

    def policy(self) -> EmehraPolicy:
        """The :class:`EmehraPolicy` these settings describe (raises SettingsInvalid)."""
        try:
            scale = self.backoff_scale
            policies = {c: _scaled(p, scale) for c, p in DEFAULT_POLICIES.items()}
            read = _scaled(EmehraPolicy().read_policy, scale)
            return EmehraPolicy(
                policies=policies,
                response_timeout=timedelta(seconds=self.response_timeout),
                read_delay=timedelta(seconds=self.read_delay),
                read_policy=read,
                review_interval=timedelta(seconds=self.review_interval),
                reassess_interval=timedelta(seconds=self.reassess_interval),
                max_total_attempts=self.max_total_attempts,
                seed=self.seed,
            )
        except (ValueError, OverflowError) as exc:
            raise SettingsInvalid(f"EMEHRA policy: {exc}") from exc


def _scaled(policy: RetryPolicy, scale: float) -> RetryPolicy:
    if not scale > 0:
        raise SettingsInvalid("backoff_scale must be positive")
    return replace(policy, base_delay=policy.base_delay * scale, max_delay=policy.max_delay * scale)


@dataclass(frozen=True, slots=True)
class MigrationSettings:
    """The operator-set configuration of migration (see the module docstring)."""

    capacity: CapacityLimits = field(
        default_factory=lambda: CapacityLimits(per_day=80_000, per_hour=10_000, in_flight=2_000)
    )
    order: tuple[OrderField, ...] = DEFAULT_ORDER
    approved: ApprovedModels = field(default_factory=ApprovedModels)
    device_types: frozenset[DeviceType] = frozenset({DeviceType.ESME, DeviceType.GSME})
    policy: PolicySettings = field(default_factory=PolicySettings)

    def __post_init__(self) -> None:
        unsupported = [f.value for f in self.order if f not in SQL_ORDER_FIELDS]
        if unsupported:
            raise SettingsInvalid(f"the engine cannot order by {', '.join(unsupported)}")
        self.policy.policy()  # refuse timings the lifecycle would refuse

    @property
    def eligibility(self) -> EligibilityConfig:
        return EligibilityConfig(self.device_types)

    def to_json(self) -> str:
        return json.dumps(
            {
                "capacity": {
                    "per_day": self.capacity.per_day,
                    "per_hour": self.capacity.per_hour,
                    "in_flight": self.capacity.in_flight,
                },
                "order": [f.value for f in self.order],
                "approved": [
                    {
                        "manufacturer": m.manufacturer,
                        "model": m.model,
                        "firmware": sorted(m.firmware_versions),
                    }
                    for m in self.approved.models
                ],
                "device_types": sorted(t.value for t in self.device_types),
                "policy": {
                    "response_timeout": self.policy.response_timeout,
                    "read_delay": self.policy.read_delay,
                    "review_interval": self.policy.review_interval,
                    "reassess_interval": self.policy.reassess_interval,
                    "backoff_scale": self.policy.backoff_scale,
                    "max_total_attempts": self.policy.max_total_attempts,
                    "seed": self.policy.seed,
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> MigrationSettings:
        try:
            doc = json.loads(text)
            capacity = doc["capacity"]
            return cls(
                capacity=CapacityLimits(
                    int(capacity["per_day"]), int(capacity["per_hour"]), int(capacity["in_flight"])
                ),
                order=tuple(OrderField(v) for v in doc["order"]),
                approved=ApprovedModels(
                    tuple(
                        ApprovedModel(m["manufacturer"], m["model"], frozenset(m["firmware"]))
                        for m in doc["approved"]
                    )
                ),
                device_types=frozenset(DeviceType(v) for v in doc["device_types"]),
                policy=PolicySettings(**doc["policy"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsInvalid(f"stored migration settings are unreadable: {exc}") from exc


@dataclass(frozen=True, slots=True)
class RunControl:
    """The run state and the capacity used in the current UTC day and hour."""

    state: RunState = RunState.STOPPED
    changed_at: datetime | None = None
    changed_by: str = ""
    day: str = ""
    started_day: int = 0
    hour: str = ""
    started_hour: int = 0

    def started_today(self, now: datetime) -> int:
        return self.started_day if self.day == _day(now) else 0

    def started_this_hour(self, now: datetime) -> int:
        return self.started_hour if self.hour == _hour(now) else 0

    def started(self, now: datetime, n: int) -> RunControl:
        return replace(
            self,
            day=_day(now),
            started_day=self.started_today(now) + n,
            hour=_hour(now),
            started_hour=self.started_this_hour(now) + n,
        )

    def moved(self, event: RunEvent, *, actor: str, at: datetime) -> RunControl:
        return replace(
            self, state=next_run_state(self.state, event), changed_at=at, changed_by=actor
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "state": self.state.value,
                "changed_at": None if self.changed_at is None else self.changed_at.isoformat(),
                "changed_by": self.changed_by,
                "day": self.day,
                "started_day": self.started_day,
                "hour": self.hour,
                "started_hour": self.started_hour,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RunControl:
        try:
            doc: dict[str, Any] = json.loads(text)
            changed = doc.get("changed_at")
            return cls(
                state=RunState(doc["state"]),
                changed_at=None if changed is None else datetime.fromisoformat(changed),
                changed_by=str(doc.get("changed_by", "")),
                day=str(doc.get("day", "")),
                started_day=int(doc.get("started_day", 0)),
                hour=str(doc.get("hour", "")),
                started_hour=int(doc.get("started_hour", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsInvalid(f"stored run control is unreadable: {exc}") from exc


def _day(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def _hour(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H")


def read_settings(tx: Repositories) -> MigrationSettings:
    """The stored settings (defaults if none), locked until the caller's transaction ends."""
    text = tx.service_state.lock(SETTINGS_DOCUMENT)
    return MigrationSettings() if text is None else MigrationSettings.from_json(text)


def load_settings(store: Store) -> MigrationSettings:
    """The stored settings, read in a transaction of their own (never nested in a write)."""
    text = store.service_state.lock(SETTINGS_DOCUMENT)
    return MigrationSettings() if text is None else MigrationSettings.from_json(text)


def write_settings(
    tx: Repositories, settings: MigrationSettings, *, actor: str, at: datetime, what: str
) -> None:
    tx.service_state.put(SETTINGS_DOCUMENT, settings.to_json(), at=at)
    tx.audit.append(
        at=at,
        actor=actor,
        action="migration.settings-changed",
        subject=SETTINGS_DOCUMENT,
        details={"what": what, "settings": json.loads(settings.to_json())},
    )


def read_run(tx: Repositories) -> RunControl:
    """The run control, locked until the caller's transaction ends (stopped if never set)."""
    text = tx.service_state.lock(RUN_DOCUMENT)
    return RunControl() if text is None else RunControl.from_json(text)


def write_run(tx: Repositories, run: RunControl, *, at: datetime) -> None:
    tx.service_state.put(RUN_DOCUMENT, run.to_json(), at=at)


class PolicyCache:
    """The stored EMEHRA policy, re-read at most every ``ttl`` seconds (thread-safe)."""

    def __init__(self, store: Store, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._policy: EmehraPolicy | None = None
        self._read_at = 0.0

    def __call__(self) -> EmehraPolicy:
        with self._lock:
            if self._policy is None or time.monotonic() - self._read_at > self.ttl:
                # Its own read: callers may be inside a write transaction (SQLite would wait
                # on itself for a nested writer).
                self._policy = load_settings(self.store).policy.policy()
                self._read_at = time.monotonic()
            return self._policy


__all__ = [
    "RUN_DOCUMENT",
    "SETTINGS_DOCUMENT",
    "SQL_ORDER_FIELDS",
    "MigrationSettings",
    "PolicyCache",
    "PolicySettings",
    "RunControl",
    "SettingsInvalid",
    "load_settings",
    "read_run",
    "read_settings",
    "write_run",
    "write_settings",
]
