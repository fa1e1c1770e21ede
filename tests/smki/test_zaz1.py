"""The ZAZ1 key store (reference/keystore/zaz1-keystore.json) as typed entries."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki import KeystoreError, load_zaz1_keystore, parse_zaz1_keystore
from tests.reference import reference_path, zaz1_keystore


def test_every_entry_loads_typed_and_its_key_matches_its_certificate() -> None:
    entries = load_zaz1_keystore(reference_path("keystore", "zaz1-keystore.json"))
    assert len(entries) == 33  # duis-xmldsig-smki §3.2
    assert len({e.name for e in entries}) == 33
    for entry in entries:
        key = serialization.load_pem_private_key(entry.private_key_pem, None)
        assert key.public_key() == entry.certificate.public_key
        assert entry.certificate.entity_eui == entry.eui


def test_transitional_cos_entry() -> None:
    entries = {
        e.name: e for e in load_zaz1_keystore(reference_path("keystore", "zaz1-keystore.json"))
    }
    tcos = entries["Z1-transitionalCoS-ds"]
    assert tcos.eui == Eui64.parse("90B3D51F30000004")
    assert tcos.role is RemotePartyRole.TRANSITIONAL_COS
    assert tcos.key_usage is KeyUsage.DIGITAL_SIGNATURE
    assert tcos.certificate.serial_hex.startswith("3CE369AB")
    assert tcos.certificate.serial_hex.endswith("8FC066")


def test_an_entry_that_disagrees_with_its_certificate_is_refused() -> None:
    document = copy.deepcopy(zaz1_keystore())
    by_serial = document["90b3d51f30000004"]["digitalSignature"]
    first = next(iter(by_serial.values()))
    first["role"] = 2
    with pytest.raises(KeystoreError, match="role"):
        parse_zaz1_keystore(document)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"nothex": {}},
        {"90b3d51f30000004": {"sign": {}}},
        {"90b3d51f30000004": []},
        {"90b3d51f30000004": {"digitalSignature": {"1": {"name": "x"}}}},
    ],
)
def test_malformed_documents_raise_keystore_error(document: object) -> None:
    with pytest.raises(KeystoreError):
        parse_zaz1_keystore(document)  # type: ignore[arg-type]


def test_unreadable_file_raises_keystore_error(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text("{not json")
    with pytest.raises(KeystoreError):
        load_zaz1_keystore(tmp_path / "k.json")
    (tmp_path / "ok.json").write_text(json.dumps({}))
    assert load_zaz1_keystore(tmp_path / "ok.json") == ()
