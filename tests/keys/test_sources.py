"""Loading keys: test PKI directories, the ZAZ1 keystore JSON, PEM/DER files, junk."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.keys import (
    AmbiguousKey,
    DuplicateKey,
    InvalidKeyMaterial,
    PrivateKeyMissing,
    SoftwareKeyStore,
    WrongKeyUsage,
    load_key_file,
    load_private_key,
    open_keystore,
)
from tests.keys.conftest import SUPPLIER_EUI, MadeEntry, pem_certificate, pem_key
from tests.keys.test_software import verify
from tests.reference import device_certificate_pem, reference_path, zaz1_entry

ZAZ1 = ("keystore", "zaz1-keystore.json")
MakePki = Callable[..., tuple[Path, dict[str, MadeEntry]]]


# -- test PKI directory ------------------------------------------------------------


def test_pki_directory_files_keys_under_eui_usage_role_and_cell(make_pki: MakePki) -> None:
    directory, made = make_pki()
    store = open_keystore([directory])
    eui = Eui64.parse(SUPPLIER_EUI)
    ds = store.lookup(eui, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.SUPPLIER)
    ka = store.lookup(
        eui,
        KeyUsage.KEY_AGREEMENT,
        RemotePartyRole.SUPPLIER,
        cell_usage=CellUsage.PREPAYMENT_TOP_UP,
    )
    assert (ds.name, ka.name) == ("supplier-a-ds", "supplier-a-ka")
    assert ds.info.serial == made["supplier-a-ds"].certificate.serial_number
    assert ds.certificate_der == made["supplier-a-ds"].certificate.public_bytes(
        serialization.Encoding.DER
    )
    digest = hashlib.sha256(b"6.23").digest()
    verify(made["supplier-a-ds"].key.public_key(), digest, ds.sign_digest(digest))


def test_pki_root_without_key_is_a_certificate_authority_entry(make_pki: MakePki) -> None:
    directory, _ = make_pki()
    root = open_keystore([directory / "pki.json"]).key("test-root")
    assert root.info.certificate_authority and not root.info.has_private_key
    with pytest.raises(PrivateKeyMissing):
        root.sign_digest(bytes(32))


def test_pki_index_that_disagrees_with_its_certificate_is_refused(make_pki: MakePki) -> None:
    def wrong_serial(entries: list[dict[str, Any]]) -> None:
        entries[1]["serial"] = "01"

    directory, _ = make_pki(wrong_serial)
    with pytest.raises(InvalidKeyMaterial, match="disagrees"):
        open_keystore([directory])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "wizard"}, "unknown kind"),
        ({"key_usage": "encipherOnly"}, "malformed"),
        ({"eui": "not-an-eui"}, "malformed"),
        ({"certificate": "../../etc/passwd"}, "leaves the PKI directory"),
        ({"private_key": "keys/missing.pem"}, "cannot read"),
    ],
)
def test_malformed_pki_entries_raise_with_the_entry_named(
    make_pki: MakePki, change: dict[str, Any], reason: str
) -> None:
    directory, _ = make_pki(lambda entries: entries[1].update(change))
    with pytest.raises(InvalidKeyMaterial, match=reason) as caught:
        open_keystore([directory])
    assert "supplier-a-ds" in str(caught.value) or "missing.pem" in str(caught.value)


# -- ZAZ1 keystore JSON ------------------------------------------------------------


def test_zaz1_keystore_finds_keys_by_eui_usage_and_role() -> None:
    store = open_keystore([reference_path(*ZAZ1)])
    load_controller = store.lookup(
        Eui64.parse("90B3D51F30010008"), KeyUsage.KEY_AGREEMENT, RemotePartyRole.LOAD_CONTROLLER
    )
    assert load_controller.name == "Z1-loadController-ka"
    tcos = store.find(
        eui=Eui64.parse("90B3D51F30000004"),
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
        role=RemotePartyRole.TRANSITIONAL_COS,
    )
    # Z1 and Z1b both hold a TCoS signing key; the serial tells them apart.
    assert [h.name for h in tcos] == ["Z1-transitionalCoS-ds", "Z1b-transitionalCoS-ds"]
    with pytest.raises(AmbiguousKey):
        store.lookup(
            Eui64.parse("90B3D51F30000004"),
            KeyUsage.DIGITAL_SIGNATURE,
            RemotePartyRole.TRANSITIONAL_COS,
        )


def test_zaz1_entry_signs_with_the_key_of_its_certificate() -> None:
    entry = zaz1_entry("Z1-transitionalCoS-ds")
    handle = open_keystore([reference_path(*ZAZ1)]).key("Z1-transitionalCoS-ds")
    expected = load_private_key(entry["privateKey"].encode()).public_key()
    digest = hashlib.sha256(b"CS02b").digest()
    verify(expected, digest, handle.sign_digest(digest))


def test_zaz1_key_agreement_entry_agrees_and_refuses_to_sign() -> None:
    entry = zaz1_entry("Z1-accessControlBroker-ka")
    own = load_private_key(entry["privateKey"].encode())
    handle = open_keystore([reference_path(*ZAZ1)]).key("Z1-accessControlBroker-ka")
    peer = ec.generate_private_key(ec.SECP256R1())
    assert handle.exchange(peer.public_key()) == peer.exchange(ec.ECDH(), own.public_key())
    with pytest.raises(WrongKeyUsage):
        handle.sign_digest(bytes(32))


def test_zaz1_mdr_certificates_refused_by_cryptography_still_load() -> None:
    # docs/duis-xmldsig-smki.md §3.2: cryptography refuses these certificates' encoding.
    handle = open_keystore([reference_path(*ZAZ1)]).key("mdr-ds")
    entry = zaz1_entry("mdr-ds")
    own = load_private_key(entry["privateKey"].encode())
    assert handle.public_key().public_numbers() == own.public_key().public_numbers()
    assert handle.info.eui == Eui64.parse("90B3D51F30010009")
    assert handle.info.role is RemotePartyRole.OTHER


# -- PEM and DER files -------------------------------------------------------------


def test_key_file_and_certificate_file_join_by_name(tmp_path: Path, make_pki: MakePki) -> None:
    _, made = make_pki()
    entry = made["supplier-a-ka"]
    (tmp_path / "ka.key.pem").write_bytes(pem_key(entry.key))
    (tmp_path / "ka.pem").write_bytes(pem_certificate(entry.certificate))
    store = open_keystore([tmp_path / "ka.key.pem", tmp_path / "ka.pem"])
    handle = store.key("ka")
    assert handle.info.has_private_key and handle.info.key_usage is KeyUsage.KEY_AGREEMENT
    assert handle.info.role is RemotePartyRole.SUPPLIER


def test_combined_pem_and_der_pkcs8_key_files_load(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "java.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    store = open_keystore([tmp_path / "java.key"])
    assert store.key("java").public_key().public_numbers() == key.public_key().public_numbers()


def test_certificate_files_give_certificate_only_entries() -> None:
    store = open_keystore(
        [
            reference_path("keystore", "Z1-accessControlBroker-dSPXmlSign.pem"),
            reference_path("keystore", "devices", "00db1234567890a0-ds.pem"),
        ]
    )
    dsp = store.key("Z1-accessControlBroker-dSPXmlSign")
    assert not dsp.info.has_private_key
    assert dsp.info.role is RemotePartyRole.DSP_XML_SIGN
    assert dsp.info.serial == 20315062944123339095836004026371736578
    device = store.key("00db1234567890a0-ds")
    # A device certificate carries its EUI in hardwareModuleName.
    assert device.info.eui == Eui64.parse("00DB1234567890A0")
    assert device.certificate_der is not None
    assert device_certificate_pem("ds").startswith(b"-----BEGIN CERTIFICATE")


def test_the_same_source_twice_is_harmless_but_a_different_key_is_a_duplicate(
    tmp_path: Path,
) -> None:
    first, second = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "k.pem").write_bytes(pem_key(first))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "k.pem").write_bytes(pem_key(second))
    assert open_keystore([tmp_path / "a" / "k.pem", tmp_path / "a" / "k.pem"]).names() == ("k",)
    with pytest.raises(DuplicateKey):
        open_keystore([tmp_path / "a" / "k.pem", tmp_path / "b" / "k.pem"])


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("junk.bin", b"\x00\x01\x02 definitely not a key", "neither PEM nor a DER"),
        ("empty.pem", b"", "neither PEM nor a DER"),
        ("other.json", b'{"hello": "world"}', "neither a test PKI index nor a ZAZ1"),
        ("broken.json", b'{"format": ', "malformed JSON"),
        (
            "csr.pem",
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "unexpected PEM block",
        ),
    ],
)
def test_open_keystore_rejects_junk_with_the_file_and_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidKeyMaterial, match=reason) as caught:
        open_keystore([path])
    assert caught.value.source == str(path)


def test_open_keystore_rejects_missing_paths_and_plain_directories(tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyMaterial, match="no such file"):
        open_keystore([tmp_path / "nothing-here"])
    with pytest.raises(InvalidKeyMaterial, match=r"pki\.json"):
        open_keystore([tmp_path])


def test_open_keystore_accepts_a_mix_of_every_source_kind(
    tmp_path: Path, make_pki: MakePki
) -> None:
    directory, _ = make_pki()
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "extra.key.pem").write_bytes(pem_key(key))
    store = open_keystore(
        [
            directory,
            reference_path(*ZAZ1),
            reference_path("keystore", "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem"),
            tmp_path / "extra.key.pem",
        ]
    )
    zaz1_names = {
        entry["name"]
        for by_usage in json.loads(reference_path(*ZAZ1).read_text()).values()
        for by_serial in by_usage.values()
        for entry in by_serial.values()
    }
    assert zaz1_names | {"supplier-a-ds", "supplier-a-ka", "test-root", "extra"} <= set(
        store.names()
    )
    assert "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1" in store


def test_zaz1_shaped_json_with_a_broken_entry_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    path.write_text(json.dumps({"90B3D51F30010000": {"digitalSignature": {"1": {"role": 2}}}}))
    with pytest.raises(InvalidKeyMaterial, match="malformed ZAZ1 entry") as caught:
        open_keystore([path])
    assert "90B3D51F30010000/digitalSignature/1" in caught.value.source


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(max_size=300)
    | st.binary(max_size=200).map(
        lambda b: (
            b"-----BEGIN CERTIFICATE-----\n" + b.hex().encode() + b"\n-----END CERTIFICATE-----\n"
        )
    )
)
def test_hostile_key_files_only_ever_raise_invalid_key_material(data: bytes) -> None:
    with contextlib.suppress(InvalidKeyMaterial):
        load_key_file(SoftwareKeyStore(), Path("hostile.pem"), data)


def test_a_pki_written_by_openecos_smki_opens_with_every_key_usable(tmp_path: Path) -> None:
    # The producer of openecos-test-pki/1; read through the JSON index only.
    from openecos.smki import create_test_pki, write_test_pki

    pki = create_test_pki()
    supplier = Eui64.parse("90B3D51F40010000")
    meter = Eui64.parse("00DB1234567890B0")
    ds = pki.issue_organisation(
        "ecos-ds",
        eui=supplier,
        role=RemotePartyRole.SUPPLIER,
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
    )
    pki = pki.with_entries(ds, *pki.issue_devices([meter]))
    write_test_pki(pki, tmp_path / "pki")
    store = open_keystore([tmp_path / "pki"])
    handle = store.lookup(supplier, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.SUPPLIER)
    digest = hashlib.sha256(b"interop").digest()
    verify(ds.private_key().public_key(), digest, handle.sign_digest(digest))
    device_ka = store.find(eui=meter, key_usage=KeyUsage.KEY_AGREEMENT)
    assert len(device_ka) == 1 and device_ka[0].info.has_private_key
    root = store.find(role=RemotePartyRole.ROOT)
    assert len(root) == 1 and root[0].info.certificate_authority
