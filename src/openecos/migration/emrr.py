"""EMRR: the ECoS Migration Reporting Regime figures, overall and per supplier.

Theory of operation. DCC reports migration progress to its users (seed 002:
"for example how many devices have been migrated, so suppliers can manage
stock"; the form is agreed with users, not fixed, and EMRR itself is not
public, docs/ecos-domain.md §C4). A report here, for one supplier (the
registered supplier of each meter) or overall, at a date ``as_of``, gives:

- the estate (meters in scope) split into :class:`EmrrCategory`: eligible
  (waiting), in flight (a command or credentials read out, or an outcome
  being established), migrated, failed and waiting to retry, exceptions
  (the exceptions queue, holds and field visits) and ineligible, the last
  split by :class:`~openecos.migration.eligibility.IneligibleReason`. Each
  lifecycle status maps to one category (:data:`CATEGORY_OF`), so the
  categories always add up to the estate; :class:`EmrrCounts` refuses
  figures that do not (:class:`~openecos.migration.errors.ReportInconsistent`);
- a daily series of confirmed migrations (zero-filled);
- a forecast completion date at the current rate. The rate is the mean of
  confirmed migrations per day over the ``window_days`` (default 7) whole
  days before ``as_of`` (``as_of`` itself is partial and not counted); the
  work remaining is every meter in scope not migrated and not ineligible;
  completion is ``as_of`` plus ``ceil(remaining / rate)`` days, ``as_of`` when
  nothing remains, and unknown (``None``) when the rate is zero.

The engine computes the figures in SQL over the whole estate and passes the
aggregated rows (:class:`CountRow`, :class:`DailyRow`) to
:func:`report_from_counts`; :func:`report_from_meters` takes per-meter
summaries and goes through the same code. A supplier's report is built from
its own rows only. :mod:`openecos.migration.emrr_render` writes JSON and CSV.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType

from openecos.eui import Eui64
from openecos.migration.eligibility import IneligibleReason
from openecos.migration.errors import InvalidMigrationInput, ReportInconsistent
from openecos.migration.record import MeterMigration, MigrationStatus


class EmrrCategory(StrEnum):
    ELIGIBLE = "eligible"
    IN_FLIGHT = "in-flight"
    MIGRATED = "migrated"
    FAILED_RETRYABLE = "failed-retryable"
    EXCEPTION = "exception"
    INELIGIBLE = "ineligible"


_S, _C = MigrationStatus, EmrrCategory

#: The one category of each lifecycle status.
CATEGORY_OF: MappingProxyType[MigrationStatus, EmrrCategory] = MappingProxyType(
    {
        _S.INELIGIBLE: _C.INELIGIBLE,
        _S.ELIGIBLE: _C.ELIGIBLE,
        _S.IN_FLIGHT: _C.IN_FLIGHT,
        _S.OUTCOME_UNKNOWN: _C.IN_FLIGHT,
        _S.READING_CREDENTIALS: _C.IN_FLIGHT,
        _S.RETRY_WAIT: _C.FAILED_RETRYABLE,
        _S.MIGRATED: _C.MIGRATED,
        _S.EXCEPTION: _C.EXCEPTION,
        _S.HELD: _C.EXCEPTION,
        _S.FIELD_VISIT: _C.EXCEPTION,
    }
)


@dataclass(frozen=True, slots=True)
class MeterSummary:
    """What EMRR needs of one meter."""

    device: Eui64
    supplier: str | None
    """The registered supplier (party or MPID, as the engine reports); ``None`` if none."""
    status: MigrationStatus
    ineligible: IneligibleReason | None = None
    migrated_on: date | None = None

    @classmethod
    def of(cls, record: MeterMigration, supplier: str | None) -> MeterSummary:
        migrated = record.status is MigrationStatus.MIGRATED
        return cls(
            record.device,
            supplier,
            record.status,
            record.ineligible,
            record.since.date() if migrated else None,
        )


@dataclass(frozen=True, slots=True)
class CountRow:
    """``SELECT supplier, status, ineligible_reason, count(*) ... GROUP BY 1, 2, 3``."""

    supplier: str | None
    status: MigrationStatus
    ineligible: IneligibleReason | None
    count: int


@dataclass(frozen=True, slots=True)
class DailyRow:
    """``SELECT supplier, day_migrated, count(*) ... GROUP BY 1, 2``."""

    supplier: str | None
    day: date
    count: int


def _nonnegative(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidMigrationInput(f"{name} must be an int >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class EmrrCounts:
    """The estate split into categories; refuses figures that do not add up."""

    estate: int
    eligible: int
    in_flight: int
    migrated: int
    failed_retryable: int
    exceptions: int
    ineligible_by_reason: tuple[tuple[IneligibleReason, int], ...]
    """In :class:`IneligibleReason` order, every reason listed (zeros included)."""

    def __post_init__(self) -> None:
        for name in ("estate", "eligible", "in_flight", "migrated", "failed_retryable"):
            _nonnegative(name, getattr(self, name))
        _nonnegative("exceptions", self.exceptions)
        for _, n in self.ineligible_by_reason:
            _nonnegative("ineligible", n)
        if self.total != self.estate:
            raise ReportInconsistent(f"categories add up to {self.total}, estate is {self.estate}")

    @property
    def ineligible(self) -> int:
        return sum(n for _, n in self.ineligible_by_reason)

    @property
    def total(self) -> int:
        return (
            self.eligible
            + self.in_flight
            + self.migrated
            + self.failed_retryable
            + self.exceptions
            + self.ineligible
        )

    @property
    def remaining(self) -> int:
        """Meters still to migrate: not migrated and not ineligible."""
        return self.eligible + self.in_flight + self.failed_retryable + self.exceptions

    def by_category(self) -> Mapping[EmrrCategory, int]:
        return MappingProxyType(
            {
                _C.ELIGIBLE: self.eligible,
                _C.IN_FLIGHT: self.in_flight,
                _C.MIGRATED: self.migrated,
                _C.FAILED_RETRYABLE: self.failed_retryable,
                _C.EXCEPTION: self.exceptions,
                _C.INELIGIBLE: self.ineligible,
            }
        )


@dataclass(frozen=True, slots=True)
class Forecast:
    """Completion at the current rate (module docstring says how it is computed)."""

    rate_per_day: float
    window_days: int
    remaining: int
    completion: date | None
    method: str = "mean of confirmed migrations per day over the window before as_of"


@dataclass(frozen=True, slots=True)
class EmrrReport:
    """One EMRR report: ``supplier`` ``None`` is the overall report."""

    as_of: date
    supplier: str | None
    counts: EmrrCounts
    daily: tuple[tuple[date, int], ...]
    forecast: Forecast

    @property
    def scope(self) -> str:
        return "overall" if self.supplier is None else self.supplier


def counts_from_rows(rows: Iterable[CountRow]) -> EmrrCounts:
    """Adds the rows up by category (a row's ineligible reason counts only if ineligible)."""
    by_category: Counter[EmrrCategory] = Counter()
    by_reason: Counter[IneligibleReason] = Counter()
    estate = 0
    for row in rows:
        _nonnegative("count", row.count)
        category = CATEGORY_OF[row.status]
        estate += row.count
        by_category[category] += row.count
        if category is _C.INELIGIBLE:
            if row.ineligible is None:
                raise ReportInconsistent("an ineligible count row names no reason")
            by_reason[row.ineligible] += row.count
    return EmrrCounts(
        estate=estate,
        eligible=by_category[_C.ELIGIBLE],
        in_flight=by_category[_C.IN_FLIGHT],
        migrated=by_category[_C.MIGRATED],
        failed_retryable=by_category[_C.FAILED_RETRYABLE],
        exceptions=by_category[_C.EXCEPTION],
        ineligible_by_reason=tuple((r, by_reason[r]) for r in IneligibleReason),
    )


def daily_series(
    rows: Iterable[DailyRow], as_of: date, window_days: int
) -> tuple[tuple[date, int], ...]:
    """Migrations per day, zero-filled, from the first day seen (or the window) to ``as_of``."""
    per_day: Counter[date] = Counter()
    for row in rows:
        _nonnegative("daily count", row.count)
        if row.day > as_of:
            raise InvalidMigrationInput(f"a migration day {row.day} after as_of {as_of}")
        per_day[row.day] += row.count
    first = min([*per_day, as_of - timedelta(days=window_days)])
    days = (as_of - first).days
    return tuple(
        (first + timedelta(days=i), per_day[first + timedelta(days=i)]) for i in range(days + 1)
    )


def forecast(
    counts: EmrrCounts, daily: tuple[tuple[date, int], ...], as_of: date, window_days: int
) -> Forecast:
    """The forecast of the module docstring."""
    window_start = as_of - timedelta(days=window_days)
    migrated = sum(n for day, n in daily if window_start <= day < as_of)
    rate = migrated / window_days
    remaining = counts.remaining
    if remaining == 0:
        completion: date | None = as_of
    elif rate == 0:
        completion = None
    else:
        completion = as_of + timedelta(days=math.ceil(remaining / rate))
    return Forecast(rate, window_days, remaining, completion)


def report_from_counts(
    rows: Iterable[CountRow],
    daily: Iterable[DailyRow],
    *,
    as_of: date,
    supplier: str | None = None,
    window_days: int = 7,
) -> EmrrReport:
    """The report for ``supplier`` (its rows only) or overall (every row) from aggregates."""
    if window_days < 1:
        raise InvalidMigrationInput("the forecast window is at least one day")
    rows = [r for r in rows if supplier is None or r.supplier == supplier]
    days = [d for d in daily if supplier is None or d.supplier == supplier]
    counts = counts_from_rows(rows)
    series = daily_series(days, as_of, window_days)
    if sum(n for _, n in series) > counts.migrated:
        raise ReportInconsistent("more daily migrations than migrated meters")
    return EmrrReport(as_of, supplier, counts, series, forecast(counts, series, as_of, window_days))


def report_from_meters(
    meters: Iterable[MeterSummary],
    *,
    as_of: date,
    supplier: str | None = None,
    window_days: int = 7,
) -> EmrrReport:
    """The same report from per-meter summaries (aggregated here, then as above)."""
    counts: Counter[tuple[str | None, MigrationStatus, IneligibleReason | None]] = Counter()
    days: Counter[tuple[str | None, date]] = Counter()
    for meter in meters:
        ineligible = meter.ineligible if meter.status is MigrationStatus.INELIGIBLE else None
        counts[(meter.supplier, meter.status, ineligible)] += 1
        if meter.status is MigrationStatus.MIGRATED and meter.migrated_on is not None:
            days[(meter.supplier, meter.migrated_on)] += 1
    return report_from_counts(
        [CountRow(s, st, r, n) for (s, st, r), n in counts.items()],
        [DailyRow(s, d, n) for (s, d), n in days.items()],
        as_of=as_of,
        supplier=supplier,
        window_days=window_days,
    )


def suppliers_of(rows: Iterable[CountRow]) -> tuple[str, ...]:
    """The suppliers that have rows, sorted (one report each)."""
    return tuple(sorted({r.supplier for r in rows if r.supplier is not None}))
