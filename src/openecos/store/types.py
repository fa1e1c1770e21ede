"""Column types that keep Python values exact on both SQLite and PostgreSQL.

- :class:`UtcDateTime`: aware UTC datetimes. PostgreSQL stores
  ``timestamptz``; SQLite stores SQLAlchemy's fixed-width ISO text of the UTC
  time, which sorts and compares as the instants do.
- :class:`EuiText`: an :class:`~openecos.eui.Eui64` as sixteen upper-case hex
  digits, readable in SQL and equal to the spelling of certificate file names.
- :class:`BiasedU64`: an unsigned 64-bit counter in a signed ``BIGINT``.
  DUIS RequestID counters reach ``2**64 - 1`` (DUIS XSD ``RequestIDType``) and
  GBCS originator counters are 64-bit, but both databases have only signed
  64-bit integers, and SQLite silently turns larger values into REAL. We store
  ``value - 2**63``: the mapping is monotonic, so ``<``, ``>``, ``max`` and
  ``+ 1`` in SQL keep their meaning, and every value fits. A raw SQL reader
  adds ``2**63`` (9223372036854775808) back.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator

from openecos.eui import Eui64

U64_BIAS = 1 << 63


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EuiText(TypeDecorator[Eui64]):
    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Eui64 | None, dialect: Dialect) -> str | None:
        return None if value is None else value.hex

    def process_result_value(self, value: Any, dialect: Dialect) -> Eui64 | None:
        return None if value is None else Eui64(bytes.fromhex(value))


class BiasedU64(TypeDecorator[int]):
    impl = BigInteger
    cache_ok = True

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # ``counter + 1`` must add a plain 1, not a biased one.
        if op in (operator.add, operator.sub):
            return BigInteger()
        return self

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < 1 << 64:
            raise ValueError(f"not an unsigned 64-bit value: {value}")
        return value - U64_BIAS

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value) + U64_BIAS


def biased(value: int) -> int:
    """The stored form of a u64, for literal SQL (migrations, raw statements)."""
    return value - U64_BIAS


class IntEnumColumn(TypeDecorator[Any]):
    """An ``IntEnum`` stored as its integer (GBCS roles, message codes, cell usages)."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, enum: type[Any]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(self.enum(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.enum(int(value))
