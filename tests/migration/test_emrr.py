"""EMRR: categories add up to the estate, supplier scoping, daily series, forecast, JSON/CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.migration import (
    CATEGORY_OF,
    CountRow,
    DailyRow,
    EmrrCategory,
    EmrrCounts,
    IneligibleReason,
    MeterSummary,
    MigrationStatus,
    ReportInconsistent,
    render_csv,
    render_json,
    report_from_counts,
    report_from_meters,
    suppliers_of,
)

AS_OF = date(2024, 2, 1)
S = MigrationStatus


def _meter(
    n: int,
    supplier: str | None,
    status: MigrationStatus,
    day: date | None = None,
    reason: IneligibleReason | None = None,
) -> MeterSummary:
    return MeterSummary(
        Eui64.from_int(n),
        supplier,
        status,
        reason if status is S.INELIGIBLE else None,
        day if status is S.MIGRATED else None,
    )


meters = st.lists(
    st.builds(
        _meter,
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from([None, "SUPA", "SUPB", "SUPC"]),
        st.sampled_from(MigrationStatus),
        st.dates(min_value=AS_OF - timedelta(days=30), max_value=AS_OF),
        st.sampled_from(IneligibleReason),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(meters)
def test_categories_always_add_up_to_the_estate(summaries: list[MeterSummary]) -> None:
    overall = report_from_meters(summaries, as_of=AS_OF)
    assert overall.counts.estate == len(summaries)
    assert sum(overall.counts.by_category().values()) == overall.counts.estate
    by_supplier = [
        report_from_meters(summaries, as_of=AS_OF, supplier=s) for s in ("SUPA", "SUPB", "SUPC")
    ]
    unregistered = sum(1 for m in summaries if m.supplier is None)
    assert sum(r.counts.estate for r in by_supplier) + unregistered == overall.counts.estate
    for report in by_supplier:
        assert sum(report.counts.by_category().values()) == report.counts.estate
        assert sum(n for _, n in report.daily) == report.counts.migrated


@settings(max_examples=100, deadline=None)
@given(meters)
def test_the_report_from_counts_equals_the_report_from_meters(
    summaries: list[MeterSummary],
) -> None:
    from collections import Counter

    rows = Counter((m.supplier, m.status, m.ineligible) for m in summaries)
    days = Counter((m.supplier, m.migrated_on) for m in summaries if m.migrated_on is not None)
    from_counts = report_from_counts(
        [CountRow(s, st_, r, n) for (s, st_, r), n in rows.items()],
        [DailyRow(s, d, n) for (s, d), n in days.items()],
        as_of=AS_OF,
    )
    assert from_counts == report_from_meters(summaries, as_of=AS_OF)


def test_each_status_has_one_category() -> None:
    assert set(CATEGORY_OF) == set(MigrationStatus)
    assert set(CATEGORY_OF.values()) == set(EmrrCategory)


def test_a_supplier_sees_only_its_own_meters() -> None:
    summaries = [
        _meter(1, "SUPA", S.MIGRATED, AS_OF - timedelta(days=1)),
        _meter(2, "SUPA", S.ELIGIBLE),
        _meter(3, "SUPB", S.EXCEPTION),
        _meter(4, "SUPB", S.INELIGIBLE, reason=IneligibleReason.MODEL_NOT_APPROVED),
    ]
    report = report_from_meters(summaries, as_of=AS_OF, supplier="SUPA")
    assert report.scope == "SUPA"
    counts = report.counts
    assert (
        counts.estate,
        counts.migrated,
        counts.eligible,
        counts.exceptions,
        counts.ineligible,
    ) == (
        2,
        1,
        1,
        0,
        0,
    )
    text = render_json(report) + render_csv(report)
    assert "SUPB" not in text


def test_ineligible_counted_by_reason() -> None:
    summaries = [
        _meter(n, "SUPA", S.INELIGIBLE, reason=r)
        for n, r in enumerate(
            [
                IneligibleReason.NOT_COMMISSIONED,
                IneligibleReason.NOT_COMMISSIONED,
                IneligibleReason.BORN_ECOS,
            ]
        )
    ]
    reasons = dict(report_from_meters(summaries, as_of=AS_OF).counts.ineligible_by_reason)
    assert reasons[IneligibleReason.NOT_COMMISSIONED] == 2
    assert reasons[IneligibleReason.BORN_ECOS] == 1
    assert set(reasons) == set(IneligibleReason)


def test_forecast_is_the_trailing_seven_day_mean() -> None:
    # 14 migrations over the 7 whole days before as_of (2 a day), 3 more today (not counted),
    # 9 meters left: ceil(9 / 2) = 5 days.
    summaries = [
        _meter(n, "SUPA", S.MIGRATED, AS_OF - timedelta(days=1 + n % 7)) for n in range(14)
    ]
    summaries += [_meter(100 + n, "SUPA", S.MIGRATED, AS_OF) for n in range(3)]
    summaries += [_meter(200 + n, "SUPA", S.ELIGIBLE) for n in range(5)]
    summaries += [_meter(300 + n, "SUPA", S.RETRY_WAIT) for n in range(2)]
    summaries += [_meter(400 + n, "SUPA", S.IN_FLIGHT) for n in range(1)]
    summaries += [_meter(500, "SUPA", S.HELD)]
    summaries += [_meter(600, "SUPA", S.INELIGIBLE, reason=IneligibleReason.BORN_ECOS)]
    forecast = report_from_meters(summaries, as_of=AS_OF).forecast
    assert forecast.rate_per_day == 2.0
    assert forecast.remaining == 9
    assert forecast.completion == AS_OF + timedelta(days=5)


def test_forecast_with_nothing_left_or_no_rate() -> None:
    done = report_from_meters([_meter(1, "A", S.MIGRATED, AS_OF - timedelta(days=40))], as_of=AS_OF)
    assert done.forecast.completion == AS_OF
    stuck = report_from_meters([_meter(1, "A", S.EXCEPTION)], as_of=AS_OF)
    assert stuck.forecast.completion is None


def test_daily_series_is_zero_filled_to_as_of() -> None:
    summaries = [_meter(1, "A", S.MIGRATED, AS_OF - timedelta(days=10))]
    daily = report_from_meters(summaries, as_of=AS_OF).daily
    assert daily[0] == (AS_OF - timedelta(days=10), 1)
    assert daily[-1] == (AS_OF, 0)
    assert len(daily) == 11


def test_figures_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(ReportInconsistent):
        EmrrCounts(10, 1, 1, 1, 1, 1, ((IneligibleReason.BORN_ECOS, 1),))
    with pytest.raises(ReportInconsistent):
        report_from_counts(
            [CountRow("A", S.MIGRATED, None, 1)], [DailyRow("A", AS_OF, 2)], as_of=AS_OF
        )
    with pytest.raises(ReportInconsistent):
        report_from_counts([CountRow("A", S.INELIGIBLE, None, 1)], [], as_of=AS_OF)


def test_json_rendering() -> None:
    summaries = [_meter(1, "A", S.MIGRATED, AS_OF - timedelta(days=1)), _meter(2, "A", S.ELIGIBLE)]
    data = json.loads(render_json(report_from_meters(summaries, as_of=AS_OF, supplier="A")))
    assert data["scope"] == "A"
    assert data["estate"] == 2
    assert data["categories"]["migrated"] == 1
    assert data["categories"]["eligible"] == 1
    assert data["forecast"]["completion"] == (AS_OF + timedelta(days=7)).isoformat()
    assert {"date": (AS_OF - timedelta(days=1)).isoformat(), "count": 1} in data["daily_migrations"]


def test_csv_rendering_holds_several_reports() -> None:
    summaries = [_meter(1, "A", S.MIGRATED, AS_OF), _meter(2, "B", S.ELIGIBLE)]
    rows = [CountRow(m.supplier, m.status, None, 1) for m in summaries]
    reports = [report_from_meters(summaries, as_of=AS_OF)] + [
        report_from_meters(summaries, as_of=AS_OF, supplier=s) for s in suppliers_of(rows)
    ]
    table = list(csv.reader(io.StringIO(render_csv(*reports))))
    assert table[0] == ["scope", "metric", "date", "value"]
    values = {(r[0], r[1], r[2]): r[3] for r in table[1:]}
    assert values[("overall", "estate", "")] == "2"
    assert values[("A", "migrated", "")] == "1"
    assert values[("B", "eligible", "")] == "1"
    assert values[("B", "forecast_completion", "")] == ""
    assert values[("A", "ineligible:BORN_ECOS", "")] == "0"
