"""Turning OpenECoS values into JSON for people and scripts.

Dataclasses become objects, enums their names, bytes upper-case hex, EUIs the
DUIS spelling and datetimes ISO 8601. One function, so every command prints
values the same way.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import datetime
from typing import Any

from openecos.eui import Eui64


def plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``."""
    if isinstance(value, Eui64):
        return value.duis
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return json.dumps(plain(value), indent=2)
