"""The one loader of the project's published vectors (``../shared/reference``).

Tests name the file they use, so a reader can open it; nothing is copied into
the project. Where the folder is missing the tests that need it skip with the
reason, except where OPENECOS_REQUIRE_REFERENCE is set (CI), where they fail.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REFERENCE_DIR = Path(
    os.environ.get(
        "OPENECOS_REFERENCE_DIR",
        Path(__file__).resolve().parents[2] / "shared" / "reference",
    )
)

RTDS_623 = "6.23_CS02bSupplierByTransCoS"
RTDS_TCOS = "NA_CS02bTransCoSByTransCoS"
RTDS_CS02A = "6.24.1_CS02aMAC"


def missing(what: str, reason: str) -> None:
    """Skips, or fails where the environment says the part is required (CI)."""
    if os.environ.get(f"OPENECOS_REQUIRE_{what}") == "1":
        pytest.fail(f"{reason} (required here: OPENECOS_REQUIRE_{what}=1)", pytrace=False)
    pytest.skip(reason)


def reference_path(*parts: str) -> Path:
    path = REFERENCE_DIR.joinpath(*parts)
    if not path.exists():
        missing("REFERENCE", f"reference data not found: {path}")
    return path


def rtds_hex(folder: str, name: str) -> bytes:
    """The bytes of one RTDS vector, e.g. ``rtds_hex(RTDS_623, "..._COMMAND_GBCS.HEX")``."""
    text = reference_path("rtds", folder, name).read_text()
    return bytes.fromhex("".join(text.split()))


def rtds_files() -> list[tuple[str, str]]:
    """Every RTDS vector as (folder, file name); empty when the folder is missing."""
    root = REFERENCE_DIR / "rtds"
    if not root.is_dir():
        return []
    return sorted((p.parent.name, p.name) for p in root.glob("*/*.HEX"))


@cache
def _zaz1() -> dict[str, Any]:
    with reference_path("keystore", "zaz1-keystore.json").open() as f:
        data: dict[str, Any] = json.load(f)
    return data


def zaz1_keystore() -> dict[str, Any]:
    """The parsed ZAZ1 keystore JSON (``reference/keystore/zaz1-keystore.json``)."""
    return _zaz1()


def zaz1_entry(name: str) -> dict[str, Any]:
    """One ZAZ1 entry by ``name`` (``Z1-transitionalCoS-ds``): certificate and privateKey PEM."""
    for by_usage in zaz1_keystore().values():
        for by_serial in by_usage.values():
            for entry in by_serial.values():
                if entry["name"] == name:
                    return dict(entry)
    raise KeyError(name)


def device_certificate_pem(usage: str = "ds") -> bytes:
    """The RTDS test meter 00-DB-12-34-56-78-90-A0's certificate (``ds`` or ``ka``)."""
    return reference_path("keystore", "devices", f"00db1234567890a0-{usage}.pem").read_bytes()
