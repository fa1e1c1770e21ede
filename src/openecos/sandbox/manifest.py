"""``sandbox.json``: the index of a sandbox directory, as a typed value.

Theory of operation: the manifest says what the sandbox was made from
(meters, ECoS fraction, seed), where everything is (paths relative to the
directory), which store holds the registration data and inventory, how the
meters' own keys are derived, who the participants are and which PKI entries
the DCC-side keys are. :func:`manifest_document` and :func:`read_manifest`
are exact inverses; every defect in a manifest is a :class:`SandboxError`.
Format ``openecos-sandbox/1``::

    {"format": "openecos-sandbox/1", "created_at": "2025-...Z",
     "parameters": {"meters": 5000, "ecos_fraction": 0.2, "seed": 1},
     "store": {"url": null, "file": "store.db"},      # or {"url": "postgresql+psycopg://..."}
     "pki": "pki",
     "device_keys": {"kind": "derived", "seed_hex": "..."},
     "files": {"participants": "registration/participants.csv", ...},
     "registration_effective_from": "2024-04-01T00:00:00Z",
     "dcc": {"access_control_broker": "90B3D51F40000002", ..., "tcos_ds": "tcos-ds", ...},
     "parties": [{"party_id": "SUPPLIER-A", "name": "...",
                  "users": [{"user_id": "90B3D51F40010000", "roles": ["IS"],
                             "pki_prefix": "supplier-a"}],
                  "mpids": [{"mpid": "OEAE", "user_id": "90B3D51F40010000", "role": "IS"}]}],
     "counts": {"meters": 5000, "esme": ..., "gsme": ..., "tcos": ..., "ecos": ...,
                "certificates": ..., "registrations": ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openecos.eui import Eui64, InvalidEui
from openecos.sandbox.errors import SandboxError
from openecos.sandbox.plan import DccIdentities, SandboxMpid, SandboxParty, SandboxUser
from openecos.store.enums import UserRole

FORMAT = "openecos-sandbox/1"
MANIFEST = "sandbox.json"

#: Every file of a sandbox, by role, relative to its directory.
FILES: dict[str, str] = {
    "participants": "registration/participants.csv",
    "registrations": "registration/registrations.csv",
    "devices": "inventory/devices.csv",
    "trust_anchors": "inventory/trust-anchors.csv",
    "device_certificates": "inventory/device-certificates.csv",
    "meters": "estate/meters.csv",
}


@dataclass(frozen=True, slots=True)
class SandboxManifest:
    meters: int
    ecos_fraction: float
    seed: int
    created_at: datetime
    store_url: str | None
    """The URL the store was given as; ``None`` for the default SQLite file."""
    store_file: str | None
    pki: str
    device_key_seed: bytes
    registration_effective_from: datetime
    parties: tuple[SandboxParty, ...]
    dcc: DccIdentities = field(default_factory=DccIdentities)
    files: dict[str, str] = field(default_factory=lambda: dict(FILES))
    counts: dict[str, int] = field(default_factory=dict)

    def store_url_in(self, directory: Path) -> str:
        """The SQLAlchemy URL of the store (the SQLite file resolved against ``directory``)."""
        if self.store_url is not None:
            return self.store_url
        if self.store_file is None:
            raise SandboxError("the manifest names neither a store URL nor a store file")
        return f"sqlite:///{(directory / self.store_file).resolve()}"


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_document(manifest: SandboxManifest) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created_at": _instant(manifest.created_at),
        "parameters": {
            "meters": manifest.meters,
            "ecos_fraction": manifest.ecos_fraction,
            "seed": manifest.seed,
        },
        "store": {"url": manifest.store_url, "file": manifest.store_file},
        "pki": manifest.pki,
        "device_keys": {"kind": "derived", "seed_hex": manifest.device_key_seed.hex()},
        "files": dict(manifest.files),
        "registration_effective_from": _instant(manifest.registration_effective_from),
        "dcc": {
            f.name: (v.hex if isinstance(v := getattr(manifest.dcc, f.name), Eui64) else v)
            for f in fields(DccIdentities)
        },
        "parties": [_party_document(p) for p in manifest.parties],
        "counts": dict(manifest.counts),
    }


def _party_document(party: SandboxParty) -> dict[str, Any]:
    return {
        "party_id": party.party_id,
        "name": party.name,
        "users": [
            {
                "user_id": u.user_id.hex,
                "roles": sorted(r.value for r in u.roles),
                "pki_prefix": u.pki_prefix,
            }
            for u in party.users
        ],
        "mpids": [
            {"mpid": m.mpid, "user_id": m.user_id.hex, "role": m.role.value} for m in party.mpids
        ],
    }


def write_manifest(directory: Path, manifest: SandboxManifest) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest_document(manifest), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(directory: Path) -> SandboxManifest:
    """Reads ``directory/sandbox.json``; raises :class:`SandboxError` naming what is wrong."""
    path = directory / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SandboxError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SandboxError(f"{path}: not a sandbox manifest ({FORMAT})")
    try:
        parameters = document["parameters"]
        store = document["store"]
        dcc_values = document["dcc"]
        dcc = DccIdentities(
            access_control_broker=Eui64.parse(dcc_values["access_control_broker"]),
            tcos_party=Eui64.parse(dcc_values["tcos_party"]),
            ecos_party=Eui64.parse(dcc_values["ecos_party"]),
            acb_ds=str(dcc_values["acb_ds"]),
            acb_ka=str(dcc_values["acb_ka"]),
            tcos_ds=str(dcc_values["tcos_ds"]),
            ecos_ds=str(dcc_values["ecos_ds"]),
            xml_signing=str(dcc_values["xml_signing"]),
        )
        files = {str(k): _relative(str(v)) for k, v in document["files"].items()}
        missing = sorted(set(FILES) - set(files))
        if missing:
            raise ValueError(f"files lacks {', '.join(missing)}")
        return SandboxManifest(
            meters=int(parameters["meters"]),
            ecos_fraction=float(parameters["ecos_fraction"]),
            seed=int(parameters["seed"]),
            created_at=_parse_instant(document["created_at"]),
            store_url=None if store["url"] is None else str(store["url"]),
            store_file=None if store["file"] is None else _relative(str(store["file"])),
            pki=_relative(str(document["pki"])),
            device_key_seed=bytes.fromhex(document["device_keys"]["seed_hex"]),
            registration_effective_from=_parse_instant(document["registration_effective_from"]),
            parties=tuple(_party(p) for p in document["parties"]),
            dcc=dcc,
            files=files,
            counts={str(k): int(v) for k, v in document.get("counts", {}).items()},
        )
    except (KeyError, TypeError, ValueError, InvalidEui) as exc:
        raise SandboxError(f"{path}: malformed manifest: {exc!r}") from None


def _party(value: Any) -> SandboxParty:
    users = tuple(
        SandboxUser(
            Eui64.parse(u["user_id"]),
            frozenset(UserRole(r) for r in u["roles"]),
            str(u["pki_prefix"]),
        )
        for u in value["users"]
    )
    mpids = tuple(
        SandboxMpid(str(m["mpid"]), Eui64.parse(m["user_id"]), UserRole(m["role"]))
        for m in value["mpids"]
    )
    return SandboxParty(str(value["party_id"]), str(value["name"]), users, mpids)


def _parse_instant(text: Any) -> datetime:
    instant = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return instant.astimezone(UTC)


def _relative(text: str) -> str:
    """A path inside the sandbox: relative, without ``..``."""
    parts = Path(text).parts
    if not text or Path(text).is_absolute() or ".." in parts:
        raise ValueError(f"path outside the sandbox directory: {text!r}")
    return text
