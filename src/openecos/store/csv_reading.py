"""Reading CSV files defensively: every defect becomes a row error, never a crash.

Theory of operation: :func:`read_rows` turns bytes into ``(row_number,
{column: text})`` pairs and a list of :class:`RowError`. Row numbers follow
the spreadsheet convention: the header is row 1, the first data row is row
2. The file is decoded as UTF-8 (a BOM is allowed) with undecodable bytes
kept as surrogates, so a bad byte is reported against its row and column
instead of aborting the file. The csv module's own complaints (a field over
:data:`MAX_FIELD`, an unterminated quote) are reported against the row and
reading goes on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from openecos.store.schema import GSP_GROUPS

#: The csv module's default field limit; longer fields are row errors.
MAX_FIELD = 131_072
#: At most this many errors are kept in a result (the count is exact).
MAX_REPORTED_ERRORS = 1000

_SURROGATE = re.compile("[\udc80-\udcff]")
#: GB settlement days start at local midnight: a bare date means 00:00 UK time.
UK = ZoneInfo("Europe/London")

Source = Path | str | bytes | BinaryIO

_UNREADABLE: list[str] = ["<unreadable>"]  # identity-compared sentinel


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong, where: row (header = 1), column (None: the whole row), reason."""

    row: int
    column: str | None
    reason: str


class RowErrors:
    """Collects errors, keeping the first :data:`MAX_REPORTED_ERRORS` and the count."""

    def __init__(self) -> None:
        self.kept: list[RowError] = []
        self.count = 0

    def add(self, row: int, column: str | None, reason: str) -> None:
        self.count += 1
        if len(self.kept) < MAX_REPORTED_ERRORS:
            self.kept.append(RowError(row, column, reason))

    def __bool__(self) -> bool:
        return self.count > 0


def _open(source: Source) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if isinstance(source, (str, Path)):
        return open(source, "rb")  # closed by read_rows
    return source


def read_rows(
    source: Source,
    columns: tuple[str, ...],
    errors: RowErrors,
    *,
    optional_columns: tuple[str, ...] = (),
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yields data rows as dicts over exactly ``columns``; defects go to ``errors``.

    A header that lacks a column, repeats one or has an unknown one stops the
    read after reporting every header defect (row 1). ``optional_columns`` may
    be left out of the header; a row then has ``""`` for them.
    """
    binary = _open(source)
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text, strict=True)
        header = _next(reader, 1, errors)
        if header is None or header is _UNREADABLE:
            if not errors:
                errors.add(1, None, "the file is empty: a header row is required")
            return
        names = [name.strip().lower() for name in header]
        if not _header_ok(names, columns, optional_columns, errors):
            return
        absent = {name: "" for name in optional_columns if name not in names}
        row_number = 1
        while True:
            row_number += 1
            fields = _next(reader, row_number, errors)
            if fields is None:
                return
            if fields is _UNREADABLE:
                continue  # reported; the csv reader resumes at the next line
            if not fields or fields == [""]:
                errors.add(row_number, None, "empty row")
                continue
            if len(fields) != len(names):
                errors.add(row_number, None, f"expected {len(names)} fields, got {len(fields)}")
                continue
            values = dict(zip(names, fields, strict=True))
            if _bad_bytes(row_number, values, errors):
                continue
            yield row_number, values | absent
    finally:
        text.detach()
        if isinstance(source, (str, Path)):
            binary.close()


def _next(reader: Iterator[list[str]], row_number: int, errors: RowErrors) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        errors.add(row_number, None, f"unreadable CSV: {exc}")
        return _UNREADABLE


def _header_ok(
    names: list[str], columns: tuple[str, ...], optional: tuple[str, ...], errors: RowErrors
) -> bool:
    before = errors.count
    seen: set[str] = set()
    for name in names:
        if _SURROGATE.search(name):
            errors.add(1, None, "header is not valid UTF-8")
        elif name in seen:
            errors.add(1, name, "column appears twice")
        elif name not in columns and name not in optional:
            errors.add(1, name[:64], "unexpected column")
        seen.add(name)
    for name in columns:
        if name not in seen:
            errors.add(1, name, "missing column")
    return errors.count == before


def _bad_bytes(row: int, values: dict[str, str], errors: RowErrors) -> bool:
    bad = False
    for column, value in values.items():
        if _SURROGATE.search(value):
            errors.add(row, column, "not valid UTF-8")
            bad = True
    return bad


# --- field parsers: each raises ValueError with a reason ---------------------


def optional(value: str) -> str | None:
    value = value.strip()
    return value or None


def parse_region(value: str) -> str | None:
    """A GSP group (``_A`` ... ``_P``; ``A`` is read as ``_A``), or None when empty."""
    text = value.strip().upper()
    if not text:
        return None
    group = text if text.startswith("_") else f"_{text}"
    if group not in GSP_GROUPS:
        raise ValueError(f"not a GSP group (_A ... _P, no _I or _O): {value[:40]!r}")
    return group


def parse_bool(value: str) -> bool:
    folded = value.strip().lower()
    if folded in {"true", "1", "yes", "y"}:
        return True
    if folded in {"false", "0", "no", "n"}:
        return False
    raise ValueError(f"not a boolean (true/false): {value[:40]!r}")


def parse_instant(value: str) -> datetime:
    """ISO 8601 with an offset (``2024-03-01T00:00:00Z``) or a date (UK midnight)."""
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None
        return datetime.combine(day, time(0), tzinfo=UK).astimezone(UTC)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {text[:40]!r}") from None
    if instant.tzinfo is None:
        raise ValueError("a date-time needs a UTC offset (e.g. Z or +01:00)")
    return instant.astimezone(UTC)
