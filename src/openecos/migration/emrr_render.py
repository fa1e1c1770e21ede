"""EMRR reports as JSON and CSV (text in, text out; the caller writes files).

JSON: one object per report (:func:`report_json`), keys stable and
documented by example in the tests. CSV: one long table, ``scope, metric,
date, value``, so any number of reports (overall and per supplier) go in one
file and a spreadsheet can pivot it; ineligible counts are the metric
``ineligible:<REASON>``, the daily series is the metric ``migrated`` with a
date, and the forecast completion's value is an ISO date (empty if unknown).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from openecos.migration.emrr import EmrrReport

CSV_HEADER = ("scope", "metric", "date", "value")


def report_json(report: EmrrReport) -> dict[str, Any]:
    """The report as JSON-ready values."""
    counts = report.counts
    completion = report.forecast.completion
    return {
        "as_of": report.as_of.isoformat(),
        "scope": report.scope,
        "estate": counts.estate,
        "categories": {c.value: n for c, n in counts.by_category().items()},
        "ineligible_by_reason": {r.name: n for r, n in counts.ineligible_by_reason},
        "daily_migrations": [{"date": d.isoformat(), "count": n} for d, n in report.daily],
        "forecast": {
            "rate_per_day": report.forecast.rate_per_day,
            "window_days": report.forecast.window_days,
            "remaining": report.forecast.remaining,
            "completion": None if completion is None else completion.isoformat(),
            "method": report.forecast.method,
        },
    }


def render_json(*reports: EmrrReport) -> str:
    """One report as an object, several as a list; sorted keys, indented."""
    values = [report_json(r) for r in reports]
    return json.dumps(values[0] if len(values) == 1 else values, indent=2, sort_keys=True)


def csv_rows(report: EmrrReport) -> list[tuple[str, str, str, str]]:
    counts = report.counts
    scope = report.scope
    rows = [
        (scope, "as_of", "", report.as_of.isoformat()),
        (scope, "estate", "", str(counts.estate)),
    ]
    rows += [(scope, c.value, "", str(n)) for c, n in counts.by_category().items()]
    rows += [(scope, f"ineligible:{r.name}", "", str(n)) for r, n in counts.ineligible_by_reason]
    rows += [(scope, "migrated", d.isoformat(), str(n)) for d, n in report.daily]
    completion = report.forecast.completion
    rows += [
        (scope, "forecast_rate_per_day", "", f"{report.forecast.rate_per_day:g}"),
        (scope, "forecast_remaining", "", str(report.forecast.remaining)),
        (scope, "forecast_completion", "", "" if completion is None else completion.isoformat()),
    ]
    return rows


def render_csv(*reports: EmrrReport) -> str:
    """Every report in one ``scope, metric, date, value`` table (RFC 4180, CRLF)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for report in reports:
        writer.writerows(csv_rows(report))
    return out.getvalue()
