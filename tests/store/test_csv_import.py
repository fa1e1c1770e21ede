"""CSV import: all or nothing, row-level errors, hostile files handled."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from openecos.eui import Eui64
from openecos.store import CosCredentialState, NotFound, Store
from openecos.store.csv_import import (
    DEVICE_COLUMNS,
    import_devices,
    import_participants,
    import_registrations,
)
from openecos.store.csv_reading import MAX_REPORTED_ERRORS
from tests.store.factories import device

HEADER = ",".join(DEVICE_COLUMNS)


def device_line(n: int, **changes: str) -> str:
    fields = {
        "eui": Eui64.from_int(0x00DB_0000_0000_0000 + n).hex,
        "device_type": "ESME",
        "status": "Commissioned",
        "mpxn": f"{1200000000000 + n}",
        "manufacturer": "0101",
        "model": "ABC-1",
        "firmware_version": "01020304",
        "credential_state": "TCOS",
        "born_ecos": "false",
    }
    fields.update(changes)
    return ",".join(fields[c] for c in DEVICE_COLUMNS)


def devices_csv(lines: list[str], header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def test_good_device_file_imports_every_row(store: Store) -> None:
    lines = [device_line(n) for n in range(3)]
    lines.append(
        device_line(3, credential_state="ECOS", born_ecos="true", mpxn="", firmware_version="")
    )
    result = import_devices(store, devices_csv(lines))
    assert (result.ok, result.rows, result.imported) == (True, 4, 4)
    born = store.devices.get(Eui64.from_int(0x00DB_0000_0000_0003))
    assert (born.born_ecos, born.credential_state, born.mpxn, born.firmware_version) == (
        True,
        CosCredentialState.ECOS,
        None,
        None,
    )


def test_one_bad_row_imports_nothing_and_names_the_row_and_column(store: Store) -> None:
    lines = [device_line(n) for n in range(5)]
    lines[3] = device_line(3, status="Installed")  # not a DUIS DeviceStatus
    result = import_devices(store, devices_csv(lines))
    assert not result.ok and result.imported == 0
    assert [(e.row, e.column) for e in result.errors] == [(5, "status")]  # header is row 1
    with pytest.raises(NotFound):
        store.devices.get(Eui64.from_int(0x00DB_0000_0000_0000))


def test_every_bad_column_of_every_row_is_reported(store: Store) -> None:
    lines = [
        device_line(0, eui="XYZ", born_ecos="maybe"),
        device_line(1, born_ecos="true"),  # born ECoS but TCOS
        device_line(2, manufacturer="m" * 31),
        device_line(0),
        device_line(0),  # duplicate EUI
    ]
    result = import_devices(store, devices_csv(lines))
    assert [(e.row, e.column) for e in result.errors] == [
        (2, "eui"),
        (2, "born_ecos"),
        (3, "credential_state"),
        (4, "manufacturer"),
        (6, "eui"),
    ]
    assert "duplicate of row 5" in result.errors[-1].reason


def test_device_already_stored_is_a_row_error(store: Store) -> None:
    store.devices.add(device(Eui64.from_int(0x00DB_0000_0000_0001)))
    result = import_devices(store, devices_csv([device_line(0), device_line(1)]))
    assert [(e.row, e.column) for e in result.errors] == [(3, "eui")]
    with pytest.raises(NotFound):
        store.devices.get(Eui64.from_int(0x00DB_0000_0000_0000))


@pytest.mark.parametrize(
    ("header", "column", "reason"),
    [
        (HEADER.replace("model,", ""), "model", "missing column"),
        (HEADER + ",colour", "colour", "unexpected column"),
        (HEADER.replace("model", "eui"), "eui", "column appears twice"),
    ],
)
def test_wrong_columns_are_reported_against_the_header(
    store: Store, header: str, column: str, reason: str
) -> None:
    result = import_devices(store, devices_csv([device_line(0)], header=header))
    assert (result.errors[0].row, result.errors[0].column, result.errors[0].reason) == (
        1,
        column,
        reason,
    )
    assert result.imported == 0


def test_hostile_bytes_become_row_errors(store: Store) -> None:
    good = device_line(0).encode()
    bad_utf8 = device_line(1, model="X").encode().replace(b",X,", b",\xff\xfe,")
    huge = device_line(2, model="M" * 200_000).encode()
    unbalanced = device_line(3, model='"open').encode()
    short = b"00DB000000000004,ESME"
    control = device_line(5, model="a\x00b").encode()
    data = b"\n".join([HEADER.encode(), good, bad_utf8, huge, short, control, unbalanced]) + b"\n"
    result = import_devices(store, data)
    assert result.imported == 0
    by_row = {(e.row, e.column) for e in result.errors}
    assert (3, "model") in by_row  # not UTF-8
    assert (4, None) in by_row  # field larger than the limit
    assert (5, None) in by_row  # wrong number of fields
    assert (6, "model") in by_row  # control character
    assert any(e.row == 7 for e in result.errors)  # unterminated quote


@pytest.mark.parametrize(
    "data", [b"", b"\xef\xbb\xbf", b"\x00\x01\x02", b'"', b"\n\n\n", "é".encode("latin-1")]
)
def test_degenerate_files_are_refused_with_errors(store: Store, data: bytes) -> None:
    result = import_devices(store, data)
    assert not result.ok and result.imported == 0 and result.errors[0].row == 1


def test_error_list_is_capped_but_counted(store: Store) -> None:
    lines = [device_line(n, status="?") for n in range(MAX_REPORTED_ERRORS + 5)]
    result = import_devices(store, devices_csv(lines))
    assert len(result.errors) == MAX_REPORTED_ERRORS
    assert result.error_count == MAX_REPORTED_ERRORS + 5


def test_file_objects_and_paths_are_accepted(store: Store, tmp_path: object) -> None:
    path = f"{tmp_path}/devices.csv"
    with open(path, "wb") as out:
        out.write(devices_csv([device_line(0)]))
    assert import_devices(store, path).imported == 1
    assert import_devices(store, io.BytesIO(devices_csv([device_line(1)]))).imported == 1


PARTICIPANTS = """party_id,party_name,user_id,user_roles,mpid,mpid_role
ACME,Acme Energy,90B3D51F30010000,IS,ACME,IS
ACME,Acme Energy,90-B3-D5-1F-30-01-00-01,GS;IS,ACMG,GS
ACME,Acme Energy,90-B3-D5-1F-30-01-00-01,GS;IS,ACMH,IS
DNO1,A distributor,90B3D51F30020000,ED,,
"""


def test_participants_import_the_split_supplier(store: Store) -> None:
    result = import_participants(store, PARTICIPANTS.encode())
    assert result.ok, result.errors
    assert store.parties.get_mpid("ACMG").user_id == Eui64.parse("90B3D51F30010001")
    assert [m.mpid for m in store.parties.mpids_of("ACME")] == ["ACME", "ACMG", "ACMH"]
    assert len(store.parties.users_of("ACME")) == 2


def test_participant_rows_that_disagree_are_refused(store: Store) -> None:
    text = PARTICIPANTS.replace("GS;IS,ACMH,IS", "GS,ACMH,GS")
    text = text.replace("DNO1,A distributor", "ACME,Other")
    text += "ACME,Acme Energy,90B3D51F30010000,IS,ACMZ,GS\n"
    result = import_participants(store, text.encode())
    assert {(e.row, e.column) for e in result.errors} == {
        (4, "user_id"),  # roles differ from row 3
        (5, "party_name"),  # another name for ACME
        (6, "mpid_role"),  # the user does not hold GS
    }
    with pytest.raises(NotFound):
        store.parties.get_party("ACME")


REGISTRATIONS = """mpxn,supplier_mpid,effective_from,effective_to
1200023305963,ACME,2024-01-01,2024-02-01T00:00:00Z
1200023305963,ACMH,2024-02-01T00:00:00Z,
7452060701,ACMG,2024-06-01,
"""


def test_registrations_import_with_uk_dates_and_utc_instants(store: Store) -> None:
    assert import_participants(store, PARTICIPANTS.encode()).ok
    result = import_registrations(store, REGISTRATIONS.encode())
    assert result.ok, result.errors
    # A bare date is 00:00 UK time: 1 June 2024 is in BST, so 23:00 UTC the day before.
    start = store.registrations.history("7452060701")[0].effective_from
    assert start == datetime(2024, 5, 31, 23, 0, tzinfo=UTC)
    assert (
        store.registrations.at("1200023305963", datetime(2024, 2, 1, tzinfo=UTC)).supplier_mpid
        == "ACMH"
    )  # type: ignore[union-attr]


def test_registration_rows_with_overlaps_or_wrong_mpids_import_nothing(store: Store) -> None:
    assert import_participants(store, PARTICIPANTS.encode()).ok
    text = REGISTRATIONS + "1200023305963,ACME,2024-03-01,\n7452060702,ACME,2024-01-01,\n"
    text += "7452060703,NONE,2024-01-01,\n1200023305964,ACME,2024-13-01,\n"
    result = import_registrations(store, text.encode())
    assert [(e.row, e.column) for e in result.errors] == [(8, "effective_from")]
    text = text.replace("2024-13-01", "2024-12-01")
    result = import_registrations(store, text.encode())
    assert sorted((e.row, e.column) for e in result.errors) == [
        (5, "effective_from"),  # overlaps the open registration of row 3
        (6, "supplier_mpid"),  # an IS MPID for an MPRN
        (7, "supplier_mpid"),  # unknown MPID
    ]
    assert store.registrations.history("1200023305963") == []


def test_registrations_overlapping_stored_data_are_refused(store: Store) -> None:
    assert import_participants(store, PARTICIPANTS.encode()).ok
    assert import_registrations(store, REGISTRATIONS.encode()).ok
    again = "mpxn,supplier_mpid,effective_from,effective_to\n7452060701,ACMG,2025-01-01,\n"
    result = import_registrations(store, again.encode())
    assert [(e.row, e.column) for e in result.errors] == [(2, "effective_from")]
    assert "stored" in result.errors[0].reason


def test_large_device_file_imports_in_one_transaction(store: Store) -> None:
    lines = [device_line(n) for n in range(20_000)]
    result = import_devices(store, devices_csv(lines))
    assert result.ok and result.imported == 20_000
    assert sum(store.devices.count_by_credential_state().values()) == 20_000


def _regions(store: Store) -> dict[int, str | None]:
    from sqlalchemy import select

    from openecos.store import schema

    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.devices.c.eui, schema.devices.c.region)).all()
    return {int.from_bytes(r.eui.value, "big") - 0x00DB_0000_0000_0000: r.region for r in rows}


def test_the_optional_region_column_sets_each_meters_gsp_group(store: Store) -> None:
    header = HEADER + ",region"
    lines = [device_line(0) + ",_A", device_line(1) + ",p", device_line(2) + ","]
    result = import_devices(store, devices_csv(lines, header=header))
    assert result.ok, result.errors
    assert _regions(store) == {0: "_A", 1: "_P", 2: None}
    assert store.devices.get(Eui64.from_int(0x00DB_0000_0000_0001)).region == "_P"


def test_a_file_without_the_region_column_still_imports(store: Store) -> None:
    result = import_devices(store, devices_csv([device_line(0)]))
    assert result.ok and _regions(store) == {0: None}


@pytest.mark.parametrize("region", ["_I", "_O", "_Q", "A1", "North"])
def test_a_region_that_is_not_a_gsp_group_refuses_the_file(store: Store, region: str) -> None:
    header = HEADER + ",region"
    lines = [device_line(0) + ",_B", device_line(1) + f",{region}"]
    result = import_devices(store, devices_csv(lines, header=header))
    assert not result.ok and result.imported == 0
    assert [(e.row, e.column) for e in result.errors] == [(3, "region")]
    assert _regions(store) == {}
