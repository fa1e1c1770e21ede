"""create_sandbox / load_sandbox: the files, the store and the meters agree."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from openecos.device import SUPPLIER_DS_CELL, TRANSITIONAL_COS_CELL, DerivedDeviceKeys
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier
from openecos.sandbox import (
    FILES,
    MANIFEST,
    Sandbox,
    SandboxError,
    create_sandbox,
    load_sandbox,
    read_meter_states,
    write_meter_states,
)
from openecos.smki import SmkiCertificate
from openecos.store import CosCredentialState, DeviceStatus, UserRole
from tests.sandbox.conftest import CREATED, ECOS_FRACTION, METERS, SEED


def _rows(directory: Path, role: str) -> list[dict[str, str]]:
    with (directory / FILES[role]).open(newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_records_parameters_counts_and_files(loaded: Sandbox) -> None:
    manifest = loaded.manifest
    assert (manifest.meters, manifest.ecos_fraction, manifest.seed) == (METERS, ECOS_FRACTION, SEED)
    assert manifest.created_at == CREATED
    assert manifest.counts["meters"] == METERS
    assert manifest.counts["ecos"] == round(METERS * ECOS_FRACTION)
    assert manifest.counts["esme"] + manifest.counts["gsme"] == METERS
    for role in FILES:
        assert loaded.path(role).is_file()
    assert manifest.store_url is None and manifest.store_file == "store.db"


def test_load_gives_back_every_meter_with_the_cells_the_dcc_believes(loaded: Sandbox) -> None:
    believed = {row["eui"]: row for row in _rows(loaded.directory, "trust_anchors")}
    assert len(loaded.meters) == METERS
    ecos = loaded.pki.entry("ecos-ds").certificate.der
    with loaded.open_store() as store:
        devices = {d.eui: d for d in store.devices.find(limit=METERS + 1)}
        assert set(devices) == set(loaded.meters)
        for eui, meter in list(loaded.meters.items())[:40]:
            device = devices[eui]
            assert device.status is DeviceStatus.COMMISSIONED
            cell = meter.cell(TRANSITIONAL_COS_CELL)
            assert cell is not None
            assert (cell.der == ecos) == (device.credential_state is CosCredentialState.ECOS)
            stored = {
                (c.role, c.key_usage, c.cell_usage): c.certificate_der
                for c in store.devices.trust_anchors(eui)
            }
            for identifier, certificate_der in stored.items():
                held = meter.cell(TrustAnchorCellIdentifier(*identifier))
                assert held is not None and held.der == certificate_der
            assert believed[eui.hex]["transitional_cos"] in ("tcos-ds", "ecos-ds")


def test_store_holds_the_csv_registrations_and_the_split_supplier(loaded: Sandbox) -> None:
    registrations = _rows(loaded.directory, "registrations")
    devices = {row["mpxn"]: row for row in _rows(loaded.directory, "devices")}
    with loaded.open_store() as store:
        for row in registrations[:30]:
            found = store.registrations.registered_supplier(
                row["mpxn"], loaded.manifest.registration_effective_from
            )
            assert found is not None and found.registration.supplier_mpid == row["supplier_mpid"]
            eui = Eui64.parse(devices[row["mpxn"]]["eui"])
            supplier_cell = loaded.meters[eui].cell(SUPPLIER_DS_CELL)
            assert supplier_cell is not None and supplier_cell.subject_unique_id == found.user_id
        users = store.parties.users_of("SUPPLIER-A")
        assert {frozenset(u.roles) for u in users} == {
            frozenset({UserRole.IMPORT_SUPPLIER}),
            frozenset({UserRole.GAS_SUPPLIER}),
        }
        assert [m.mpid for m in store.parties.mpids_of("SUPPLIER-A")] == ["OEAE", "OEAG"]


def test_xml_signing_certificates_are_known_to_the_dcc(loaded: Sandbox) -> None:
    with loaded.open_store() as store:
        for name in ("supplier-a-xml-sign", "supplier-a2-xml-sign", "supplier-b-xml-sign"):
            certificate = loaded.pki.entry(name).certificate
            assert certificate.eui is not None
            known = store.certificates.by_subject(
                certificate.eui, RemotePartyRole.XML_SIGN, KeyUsage.DIGITAL_SIGNATURE
            )
            assert [k.der for k in known] == [certificate.der]


def test_device_certificates_carry_the_derived_keys(loaded: Sandbox) -> None:
    keys = DerivedDeviceKeys(loaded.manifest.device_key_seed)
    rows = _rows(loaded.directory, "device_certificates")
    assert len(rows) == 2 * METERS
    with loaded.open_store() as store:
        for row in rows[:10]:
            eui, usage = Eui64.parse(row["eui"]), KeyUsage(row["key_usage"])
            der = base64.b64decode(row["certificate"])
            (known,) = store.certificates.by_subject(eui, key_usage=usage)
            assert known.der == der
            certificate = SmkiCertificate.from_der(der)
            assert certificate.device_eui == eui
            spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            assert certificate.public_key.public_bytes(*spki) == keys.public_key(
                eui, usage
            ).public_bytes(*spki)


def test_meter_states_round_trip_through_their_file(loaded: Sandbox, tmp_path: Path) -> None:
    states = list(loaded.meters.values())[:25]
    path = tmp_path / "meters.csv"
    assert write_meter_states(path, states, loaded.pki) == 25
    again = read_meter_states(path, loaded.pki, loaded.profile)
    for state in states:
        back = again[state.device]
        assert [c.der if c else None for c in back.cells] == [
            c.der if c else None for c in state.cells
        ]
        assert back.seq_numbers == state.seq_numbers
        assert back.alert_counter == state.alert_counter


def test_a_certificate_outside_the_pki_is_written_inline(loaded: Sandbox, tmp_path: Path) -> None:
    from dataclasses import replace

    from openecos.device import commission_meter
    from openecos.smki import sandbox_pki

    stranger = sandbox_pki().entry("supplier-b-ds").certificate  # another PKI's certificate
    state = commission_meter(
        Eui64.parse("00DB12FF00000001"),
        cells={SUPPLIER_DS_CELL: stranger},
        certificates=loaded.profile.certificates,
    )
    state = replace(state, alert_counter=77)
    path = tmp_path / "meters.csv"
    write_meter_states(path, [state], loaded.pki)
    assert "der:" in path.read_text()
    (back,) = read_meter_states(path, loaded.pki, loaded.profile).values()
    held = back.cell(SUPPLIER_DS_CELL)
    assert held is not None and held.der == stranger.der and back.alert_counter == 77


def test_creating_into_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(SandboxError, match="not an empty directory"):
        create_sandbox(tmp_path, meters=1)


def test_a_directory_without_a_manifest_is_not_a_sandbox(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=MANIFEST):
        load_sandbox(tmp_path)


def test_a_manifest_pointing_outside_the_directory_is_refused(
    sandbox_dir: Path, tmp_path: Path
) -> None:
    document = json.loads((sandbox_dir / MANIFEST).read_text())
    document["files"]["meters"] = "../../etc/passwd"
    (tmp_path / MANIFEST).write_text(json.dumps(document))
    with pytest.raises(SandboxError, match="outside the sandbox"):
        load_sandbox(tmp_path)


def test_a_meter_row_naming_an_unknown_certificate_is_refused(
    loaded: Sandbox, tmp_path: Path
) -> None:
    text = loaded.path("meters").read_text().splitlines()
    path = tmp_path / "meters.csv"
    path.write_text(text[0] + "\n" + text[1].replace("acb-ds", "no-such-entry") + "\n")
    with pytest.raises(SandboxError, match="no PKI entry named 'no-such-entry'"):
        read_meter_states(path, loaded.pki, loaded.profile)
