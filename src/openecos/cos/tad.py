"""Threshold Anomaly Detection (TAD) for 6.23: counts in sliding windows, quarantine, release.

Theory of operation (docs/ecos-domain.md §D1). The SEC asks for two counts of
a communication type over time: per User ID against that user's Anomaly
Detection Threshold (ADT), and DCC-wide, across all users, against a DCC
threshold. A request that would take either count over its threshold is
quarantined, reported with a ``QuarantinedRequest`` DCC alert (user- or
DCC-threshold breach, with a QuarantineEventRef), and held until an operator
acts on the user's Exit Quarantine instruction: :func:`release` lets it go,
:func:`discard` drops it.

The state is a small value (:class:`TadState`) the service persists as JSON
(:meth:`TadState.to_json`) in the same transaction as the request's state:
counts per time bucket, not one entry per request, so its size is bounded by
users × buckets whatever the traffic. The window is ``window`` long, made of
``window / bucket`` buckets including the current one, so a count covers
between ``window - bucket`` and ``window`` of history (choose the bucket
small against the window). Only requests that go ahead are counted: a
quarantined request counts when, and if, it is released. Buckets later than
``now`` (a clock stepped back) still count, which errs toward quarantine.

:func:`assess` and :func:`release` are pure: state, user, time and config in;
the new state and the decision out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from openecos.cos.errors import CosError, NotQuarantined
from openecos.duis.request_id import RequestId
from openecos.duis.response import QuarantineBreach, QuarantinedRequestAlert
from openecos.eui import Eui64

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: QuarantineEventRef is an integer of up to 20 digits (DUIS V5.4).
EVENT_REF_MAX = 10**20 - 1

Buckets = tuple[tuple[int, int], ...]  # (bucket index, count), ascending by index


class TadStateInvalid(CosError):
    """Persisted TAD state that cannot be read back."""


@dataclass(frozen=True, slots=True)
class TadConfig:
    """Windows and thresholds; ``user_thresholds`` are per-user ADTs overriding the default."""

    default_user_threshold: int
    dcc_threshold: int
    window: timedelta = timedelta(hours=24)
    bucket: timedelta = timedelta(minutes=15)
    user_thresholds: tuple[tuple[Eui64, int], ...] = ()

    def __post_init__(self) -> None:
        thresholds = [self.default_user_threshold, self.dcc_threshold]
        thresholds += [t for _, t in self.user_thresholds]
        if any(not isinstance(t, int) or t < 0 for t in thresholds):
            raise ValueError("thresholds are non-negative integers")
        if self.bucket <= timedelta(0) or self.window < self.bucket:
            raise ValueError("the bucket must be positive and no longer than the window")
        if self.window % self.bucket:
            raise ValueError("the window must be a whole number of buckets")

    @property
    def buckets(self) -> int:
        return self.window // self.bucket

    def threshold_for(self, user_id: Eui64) -> int:
        for user, threshold in self.user_thresholds:
            if user == user_id:
                return threshold
        return self.default_user_threshold


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A request held by TAD, known by its QuarantineEventRef."""

    quarantine_event_ref: int
    user_id: Eui64
    breach: QuarantineBreach
    at: datetime


@dataclass(frozen=True, slots=True)
class TadState:
    """The counts in the window and the requests held; JSON through :meth:`to_json`."""

    dcc: Buckets = ()
    users: tuple[tuple[Eui64, Buckets], ...] = ()  # sorted by user ID
    held: tuple[Quarantine, ...] = ()
    next_event_ref: int = 1

    def user_buckets(self, user_id: Eui64) -> Buckets:
        for user, buckets in self.users:
            if user == user_id:
                return buckets
        return ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "dcc": [list(b) for b in self.dcc],
                "users": {u.hex: [list(b) for b in bs] for u, bs in self.users},
                "held": [
                    {
                        "ref": q.quarantine_event_ref,
                        "user": q.user_id.hex,
                        "breach": q.breach.value,
                        "at": q.at.isoformat(),
                    }
                    for q in self.held
                ],
                "next_event_ref": self.next_event_ref,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> TadState:
        """Reads :meth:`to_json` output; raises :class:`TadStateInvalid`."""
        try:
            data = json.loads(text)
            return cls(
                dcc=_buckets(data["dcc"]),
                users=tuple(
                    sorted((Eui64.parse(u), _buckets(bs)) for u, bs in data["users"].items())
                ),
                held=tuple(
                    Quarantine(
                        quarantine_event_ref=_int(q["ref"]),
                        user_id=Eui64.parse(q["user"]),
                        breach=QuarantineBreach(q["breach"]),
                        at=_aware(datetime.fromisoformat(q["at"])),
                    )
                    for q in data["held"]
                ),
                next_event_ref=_int(data["next_event_ref"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TadStateInvalid(f"TAD state cannot be read: {exc}") from exc


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not a non-negative integer: {value!r}")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value


def _buckets(raw: Any) -> Buckets:
    return tuple(sorted((int(index), _int(count)) for index, count in raw))


class Verdict(StrEnum):
    PROCEED = "proceed"
    QUARANTINE = "quarantine"


@dataclass(frozen=True, slots=True)
class Decision:
    """TAD's answer for one request, with the counts it was judged on (this one included)."""

    verdict: Verdict
    user_count: int
    dcc_count: int
    breach: QuarantineBreach | None = None
    quarantine_event_ref: int | None = None

    @property
    def quarantined(self) -> bool:
        return self.verdict is Verdict.QUARANTINE

    def alert(self, request_id: RequestId) -> QuarantinedRequestAlert:
        """The ``QuarantinedRequest`` DCC alert due to the requester (code AD1)."""
        if self.breach is None or self.quarantine_event_ref is None:
            raise ValueError("no alert is due for a request that proceeds")
        return QuarantinedRequestAlert(self.breach, request_id, self.quarantine_event_ref)


@dataclass(frozen=True, slots=True)
class _Window:
    current: int
    size: int

    def keep(self, buckets: Buckets) -> Buckets:
        oldest = self.current - self.size + 1
        return tuple(b for b in buckets if b[0] >= oldest)

    def add(self, buckets: Buckets) -> Buckets:
        counts = dict(buckets)
        counts[self.current] = counts.get(self.current, 0) + 1
        return tuple(sorted(counts.items()))


def _window(now: datetime, config: TadConfig) -> _Window:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("TAD times must be timezone-aware")
    return _Window((now - _EPOCH) // config.bucket, config.buckets)


def _total(buckets: Buckets) -> int:
    return sum(count for _, count in buckets)


def _pruned(state: TadState, window: _Window) -> TadState:
    users = tuple((u, kept) for u, bs in state.users if (kept := window.keep(bs)))
    return replace(state, dcc=window.keep(state.dcc), users=users)


def _counted(state: TadState, user_id: Eui64, window: _Window) -> TadState:
    users = dict(state.users)
    users[user_id] = window.add(users.get(user_id, ()))
    return replace(state, dcc=window.add(state.dcc), users=tuple(sorted(users.items())))


def assess(
    state: TadState, user_id: Eui64, now: datetime, config: TadConfig
) -> tuple[TadState, Decision]:
    """Counts one 6.23 from ``user_id`` at ``now``; quarantines it if over a threshold.

    The user's own threshold is checked first: a user-threshold breach is the
    more specific finding (and the one the user can act on).
    """
    window = _window(now, config)
    state = _pruned(state, window)
    user_count = _total(state.user_buckets(user_id)) + 1
    dcc_count = _total(state.dcc) + 1
    breach: QuarantineBreach | None = None
    if user_count > config.threshold_for(user_id):
        breach = QuarantineBreach.USER_THRESHOLD
    elif dcc_count > config.dcc_threshold:
        breach = QuarantineBreach.DCC_THRESHOLD
    if breach is None:
        return _counted(state, user_id, window), Decision(Verdict.PROCEED, user_count, dcc_count)
    ref = state.next_event_ref
    if ref > EVENT_REF_MAX:
        raise TadStateInvalid("QuarantineEventRef space exhausted")
    held = (*state.held, Quarantine(ref, user_id, breach, now))
    decision = Decision(Verdict.QUARANTINE, user_count, dcc_count, breach, ref)
    return replace(state, held=held, next_event_ref=ref + 1), decision


def _take(state: TadState, quarantine_event_ref: int) -> tuple[TadState, Quarantine]:
    for q in state.held:
        if q.quarantine_event_ref == quarantine_event_ref:
            rest = tuple(h for h in state.held if h is not q)
            return replace(state, held=rest), q
    raise NotQuarantined(f"no request is quarantined under event {quarantine_event_ref}")


def release(
    state: TadState, quarantine_event_ref: int, now: datetime, config: TadConfig
) -> tuple[TadState, Quarantine]:
    """An operator releases a held request; it now counts, at ``now``, as going ahead.

    Raises :class:`~openecos.cos.errors.NotQuarantined` for an unknown reference.
    """
    window = _window(now, config)
    state, held = _take(state, quarantine_event_ref)
    return _counted(_pruned(state, window), held.user_id, window), held


def discard(state: TadState, quarantine_event_ref: int) -> tuple[TadState, Quarantine]:
    """An operator drops a held request (it is rejected, never counted)."""
    return _take(state, quarantine_event_ref)
