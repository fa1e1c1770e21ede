"""The interface's rules: usage permissions, lookup, signature encodings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.keys import (
    AmbiguousKey,
    KeyInfo,
    KeyNotFound,
    KeyOperation,
    MalformedSignature,
    PrivateKeyMissing,
    SoftwareKeyStore,
    WrongKeyUsage,
    der_signature,
    raw_signature,
)

EUI = Eui64.parse("90B3D51F30010000")


@pytest.mark.parametrize(
    ("usage", "ca", "sign", "exchange"),
    [
        (KeyUsage.DIGITAL_SIGNATURE, False, True, False),
        (KeyUsage.KEY_AGREEMENT, False, False, True),
        (None, False, True, True),
        (None, True, True, False),  # keyCertSign: signs certificates, never agrees
    ],
)
def test_key_usage_decides_which_operations_are_permitted(
    usage: KeyUsage | None, ca: bool, sign: bool, exchange: bool
) -> None:
    info = KeyInfo("k", key_usage=usage, certificate_authority=ca)
    for operation, allowed in ((KeyOperation.SIGN, sign), (KeyOperation.EXCHANGE, exchange)):
        if allowed:
            info.check_permits(operation)
        else:
            with pytest.raises(WrongKeyUsage):
                info.check_permits(operation)


def test_certificate_only_entry_permits_nothing() -> None:
    info = KeyInfo("k", has_private_key=False)
    for operation in KeyOperation:
        with pytest.raises(PrivateKeyMissing):
            info.check_permits(operation)


def _store_with(*infos: KeyInfo) -> SoftwareKeyStore:
    from cryptography.hazmat.primitives.asymmetric import ec

    store = SoftwareKeyStore()
    for info in infos:
        store.add(info, ec.generate_private_key(ec.SECP256R1()))
    return store


def test_lookup_returns_the_single_match_and_find_all_matches() -> None:
    store = _store_with(
        KeyInfo("ds", KeyUsage.DIGITAL_SIGNATURE, EUI, RemotePartyRole.SUPPLIER),
        KeyInfo("ka", KeyUsage.KEY_AGREEMENT, EUI, RemotePartyRole.SUPPLIER),
        KeyInfo("nw", KeyUsage.DIGITAL_SIGNATURE, EUI, RemotePartyRole.NETWORK_OPERATOR),
    )
    found = store.lookup(EUI, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.SUPPLIER)
    assert found.name == "ds"
    assert [h.name for h in store.find(eui=EUI)] == ["ds", "ka", "nw"]
    assert [h.name for h in store.find(key_usage=KeyUsage.DIGITAL_SIGNATURE)] == ["ds", "nw"]


def test_lookup_with_two_matches_is_ambiguous_and_names_them() -> None:
    store = _store_with(
        KeyInfo("a", KeyUsage.DIGITAL_SIGNATURE, EUI, RemotePartyRole.SUPPLIER, serial=1),
        KeyInfo("b", KeyUsage.DIGITAL_SIGNATURE, EUI, RemotePartyRole.SUPPLIER, serial=2),
    )
    with pytest.raises(AmbiguousKey) as caught:
        store.lookup(EUI, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.SUPPLIER)
    assert caught.value.names == ("a", "b")
    by_serial = store.lookup(EUI, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.SUPPLIER, serial=2)
    assert by_serial.name == "b"


def test_lookup_without_match_raises_key_not_found() -> None:
    store = _store_with(KeyInfo("a", KeyUsage.DIGITAL_SIGNATURE, EUI, RemotePartyRole.SUPPLIER))
    with pytest.raises(KeyNotFound, match="TRANSITIONAL_COS"):
        store.lookup(EUI, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.TRANSITIONAL_COS)


@settings(max_examples=50, deadline=None)
@given(r=st.integers(1, 2**256 - 1), s=st.integers(1, 2**256 - 1))
def test_raw_and_der_signature_round_trip(r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert raw_signature(der_signature(raw)) == raw


@pytest.mark.parametrize("raw", [b"", bytes(63), bytes(65)])
def test_der_signature_refuses_wrong_length(raw: bytes) -> None:
    with pytest.raises(MalformedSignature):
        der_signature(raw)


def test_raw_signature_refuses_junk_der() -> None:
    with pytest.raises(MalformedSignature):
        raw_signature(b"\x30\x00junk")
