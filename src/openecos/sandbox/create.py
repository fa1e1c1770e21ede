"""``create_sandbox``: write a sandbox directory and fill its store.

Theory of operation: this is an I/O edge. It takes the plan of
:mod:`openecos.sandbox.plan`, mints the test PKI, writes every CSV a person
reads, imports the same CSVs into the store with ``openecos.store``'s
all-or-nothing importer (so the files and the store cannot disagree), adds
the certificates the DCC knows and the trust-anchor cells it believes each
meter holds through the repositories, commissions the simulated meters in the
matching state, and writes ``sandbox.json`` last: a directory without a
manifest is an unfinished sandbox.

Device certificates are minted for keys derived from the manifest's device
key seed (``openecos.device.DerivedDeviceKeys``), so a meter's private keys
are never written anywhere: the seed is every meter's key (a simulator's
trade-off, see that module).
"""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from openecos.device import (
    DerivedDeviceKeys,
    commission_sandbox_meter,
    sandbox_cells,
    sandbox_device_certificates,
    sandbox_profile,
)
from openecos.device.cells import AnchorCertificate
from openecos.duis import issuer_of
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier
from openecos.sandbox.errors import SandboxError
from openecos.sandbox.estate import write_cell_table, write_meter_states
from openecos.sandbox.load import Sandbox, keystore_for
from openecos.sandbox.manifest import FILES, SandboxManifest, write_manifest
from openecos.sandbox.plan import (
    SANDBOX_PARTICIPANTS,
    DccIdentities,
    PlannedMeter,
    plan_estate,
)
from openecos.smki import PkiEntryKind, SmkiCertificate, TestPki, sandbox_pki, write_test_pki
from openecos.store import DeviceStatus, KnownCertificate, Store, TrustAnchorCell
from openecos.store.csv_import import (
    DEVICE_COLUMNS,
    PARTICIPANT_COLUMNS,
    REGISTRATION_COLUMNS,
    ImportResult,
    import_devices,
    import_participants,
    import_registrations,
)

DEFAULT_METERS = 2000
DEFAULT_ECOS_FRACTION = 0.2
DEFAULT_SEED = 1
STORE_FILE = "store.db"
PKI_DIRECTORY = "pki"
#: Every sandbox registration starts here and is open-ended.
REGISTRATION_START = datetime(2024, 4, 1, tzinfo=UTC)

DEVICE_CERTIFICATE_COLUMNS = ("eui", "key_usage", "serial", "certificate")


def device_key_seed(seed: int) -> bytes:
    """The seed of the meters' derived keys for a sandbox ``seed``."""
    return f"openecos sandbox device keys {seed}".encode()


@dataclass(frozen=True, slots=True)
class _Written:
    certificates: int
    registrations: int


def create_sandbox(
    directory: Path,
    *,
    meters: int = DEFAULT_METERS,
    ecos_fraction: float = DEFAULT_ECOS_FRACTION,
    seed: int = DEFAULT_SEED,
    store_url: str | None = None,
    now: datetime | None = None,
) -> Sandbox:
    """Creates a sandbox in ``directory`` (new or empty) and returns it, loaded.

    ``store_url`` puts the store elsewhere (e.g. PostgreSQL; it must hold no
    sandbox participants yet); by default it is ``store.db`` in the directory.
    ``now`` is only recorded as the creation time. Raises :class:`SandboxError`.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise SandboxError(f"{directory} exists and is not an empty directory")
    if meters < 0 or meters > 10_000_000:
        raise SandboxError(f"meters must be within 0..10000000, got {meters}")
    try:
        plan = plan_estate(meters, ecos_fraction=ecos_fraction, seed=seed)
    except ValueError as exc:
        raise SandboxError(str(exc)) from None
    for sub in ("registration", "inventory", "estate"):
        (directory / sub).mkdir(parents=True, exist_ok=True)

    pki = sandbox_pki()
    write_test_pki(pki, directory / PKI_DIRECTORY)
    key_seed = device_key_seed(seed)
    profile = sandbox_profile(pki, seed=key_seed)
    dcc = DccIdentities()

    _write_participants(directory / FILES["participants"])
    _write_registrations(directory / FILES["registrations"], plan)
    _write_devices(directory / FILES["devices"], plan)
    device_certificates = _write_device_certificates(
        directory / FILES["device_certificates"], pki, plan, DerivedDeviceKeys(key_seed)
    )
    cells = {m.eui: _cells_of(pki, m, dcc) for m in plan}
    write_cell_table(
        directory / FILES["trust_anchors"],
        ((eui, {c: a.der for c, a in by_cell.items()}) for eui, by_cell in cells.items()),
        pki,
    )
    states = {
        m.eui: commission_sandbox_meter(
            pki,
            m.eui,
            profile,
            supplier=m.supplier.pki_prefix,
            transitional_cos=dcc.transitional_cos_entry(m.credential_state),
        )
        for m in plan
    }
    write_meter_states(directory / FILES["meters"], states.values(), pki)

    url = store_url or f"sqlite:///{(directory / STORE_FILE).resolve()}"
    written = _fill_store(url, directory, pki, device_certificates, cells)

    manifest = SandboxManifest(
        meters=meters,
        ecos_fraction=ecos_fraction,
        seed=seed,
        created_at=now or datetime.now(UTC),
        store_url=store_url,
        store_file=None if store_url else STORE_FILE,
        pki=PKI_DIRECTORY,
        device_key_seed=key_seed,
        registration_effective_from=REGISTRATION_START,
        parties=SANDBOX_PARTICIPANTS,
        dcc=dcc,
        counts=_counts(plan, written),
    )
    write_manifest(directory, manifest)
    return Sandbox(
        directory, manifest, pki, url, keystore_for(directory, manifest), profile, states
    )


def _counts(plan: tuple[PlannedMeter, ...], written: _Written) -> dict[str, int]:
    counts = {"meters": len(plan)}
    for key in ("ESME", "GSME"):
        counts[key.lower()] = sum(1 for m in plan if m.device_type.value == key)
    for state in ("TCOS", "ECOS"):
        counts[state.lower()] = sum(1 for m in plan if m.credential_state.value == state)
    counts["registrations"] = written.registrations
    counts["certificates"] = written.certificates
    return counts


# -- the CSV files ---------------------------------------------------------------------------


@contextmanager
def _writer(path: Path, header: tuple[str, ...]) -> Iterator[csv.DictWriter[str]]:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=header)
        writer.writeheader()
        yield writer


def _write_participants(path: Path) -> None:
    with _writer(path, PARTICIPANT_COLUMNS) as writer:
        for party in SANDBOX_PARTICIPANTS:
            for user in party.users:
                base = {
                    "party_id": party.party_id,
                    "party_name": party.name,
                    "user_id": user.user_id.hex,
                    "user_roles": ";".join(sorted(r.value for r in user.roles)),
                }
                held = [m for m in party.mpids if m.user_id == user.user_id]
                for mpid in held:
                    writer.writerow(base | {"mpid": mpid.mpid, "mpid_role": mpid.role.value})
                if not held:
                    writer.writerow(base | {"mpid": "", "mpid_role": ""})


def _write_registrations(path: Path, plan: tuple[PlannedMeter, ...]) -> None:
    start = REGISTRATION_START.strftime("%Y-%m-%dT%H:%M:%SZ")
    with _writer(path, REGISTRATION_COLUMNS) as writer:
        for meter in plan:
            writer.writerow(
                {
                    "mpxn": meter.mpxn,
                    "supplier_mpid": meter.supplier_mpid,
                    "effective_from": start,
                    "effective_to": "",
                }
            )


def _write_devices(path: Path, plan: tuple[PlannedMeter, ...]) -> None:
    with _writer(path, DEVICE_COLUMNS) as writer:
        for meter in plan:
            writer.writerow(
                {
                    "eui": meter.eui.hex,
                    "device_type": meter.device_type.value,
                    "status": DeviceStatus.COMMISSIONED.value,
                    "mpxn": meter.mpxn,
                    "manufacturer": meter.model.manufacturer,
                    "model": meter.model.model,
                    "firmware_version": meter.model.firmware_version,
                    "credential_state": meter.credential_state.value,
                    "born_ecos": "false",
                }
            )


def _write_device_certificates(
    path: Path, pki: TestPki, plan: tuple[PlannedMeter, ...], keys: DerivedDeviceKeys
) -> list[SmkiCertificate]:
    """Mints each meter's DS and KA certificates (derived keys) and lists them in a CSV."""
    minted: list[SmkiCertificate] = []
    with _writer(path, DEVICE_CERTIFICATE_COLUMNS) as writer:
        for meter in plan:
            pair = sandbox_device_certificates(pki, meter.eui, keys)
            for usage, certificate in (
                (KeyUsage.DIGITAL_SIGNATURE, pair.digital_signature),
                (KeyUsage.KEY_AGREEMENT, pair.key_agreement),
            ):
                writer.writerow(
                    {
                        "eui": meter.eui.hex,
                        "key_usage": usage.value,
                        "serial": certificate.serial_hex,
                        "certificate": base64.b64encode(certificate.der).decode(),
                    }
                )
                minted.append(certificate)
    return minted


# -- the store --------------------------------------------------------------------------------


def _cells_of(
    pki: TestPki, meter: PlannedMeter, dcc: DccIdentities
) -> dict[TrustAnchorCellIdentifier, AnchorCertificate]:
    """The cells the DCC records for a meter: supplier, network operator, ACB, root, TCoS."""
    cells = sandbox_cells(
        pki,
        supplier=meter.supplier.pki_prefix,
        transitional_cos=dcc.transitional_cos_entry(meter.credential_state),
    )
    return {cell: AnchorCertificate.of(certificate) for cell, certificate in cells.items()}


def _known(certificate: SmkiCertificate) -> KnownCertificate:
    usage = certificate.key_usage
    if usage is None:
        raise SandboxError(f"certificate {certificate.serial_hex} has no single key usage")
    return KnownCertificate(
        der=certificate.der,
        issuer_name=issuer_of(certificate.der),
        serial=certificate.serial,
        subject_eui=certificate.eui,
        role=certificate.role,
        key_usage=usage,
    )


def _checked(result: ImportResult, path: Path) -> int:
    if not result.ok:
        shown = "; ".join(
            f"row {e.row}" + (f" {e.column}" if e.column else "") + f": {e.reason}"
            for e in result.errors[:3]
        )
        raise SandboxError(f"the store refused {path}: {result.error_count} errors ({shown})")
    return result.imported


def _fill_store(
    url: str,
    directory: Path,
    pki: TestPki,
    device_certificates: list[SmkiCertificate],
    cells: dict[Eui64, dict[TrustAnchorCellIdentifier, AnchorCertificate]],
) -> _Written:
    with Store.open(url) as store:
        _checked(import_participants(store, directory / FILES["participants"]), directory)
        registrations = _checked(
            import_registrations(store, directory / FILES["registrations"]), directory
        )
        _checked(import_devices(store, directory / FILES["devices"]), directory)
        organisation = [e.certificate for e in pki.entries if e.kind is PkiEntryKind.ORGANISATION]
        known = [_known(c) for c in (*organisation, *device_certificates)]
        with store.transaction() as tx:
            for certificate in known:
                tx.certificates.add(certificate)
            for eui, by_cell in cells.items():
                tx.devices.replace_trust_anchors(
                    eui,
                    (
                        TrustAnchorCell(
                            role=cell.remote_party_role,
                            key_usage=cell.key_usage,
                            cell_usage=cell.cell_usage,
                            certificate_der=anchor.der,
                            subject_eui=anchor.subject_unique_id,
                            ski=anchor.subject_key_id,
                        )
                        for cell, anchor in by_cell.items()
                    ),
                )
    return _Written(len(known), registrations)
