"""Pkcs11KeyStore on a throwaway SoftHSM2 token: custody, signatures, ECDH, errors."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.keys import (
    DuplicateKey,
    InvalidDigest,
    KeyHandle,
    KeyNotFound,
    Pkcs11Config,
    Pkcs11KeyStore,
    PrivateKeyMissing,
    TokenError,
    TokenFailure,
    WrongKeyUsage,
    load_private_key,
    open_keystore,
    transfer,
)
from openecos.keys.certificates import certificate_der
from tests.keys.conftest import SoftHsmToken
from tests.keys.test_software import verify
from tests.reference import reference_path, zaz1_entry

pytestmark = pytest.mark.softhsm

ZAZ1_NAMES = ("Z1-transitionalCoS-ds", "Z1-accessControlBroker-ka")


def _inspect(token: SoftHsmToken, label: str) -> Any:
    """Opens a separate session to look at the token's private key object directly.

    No PIN: the store's login belongs to the process and covers this session too.
    """
    import pkcs11

    session = pkcs11.lib(token.module).get_token(token_label=token.label).open()
    return session, session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=label)


def _zaz1(name: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    entry = zaz1_entry(name)
    return (
        load_private_key(entry["privateKey"].encode(), name),
        certificate_der(entry["certificate"].encode()),
    )


def test_generated_key_signs_in_the_token_and_verifies(token_store: Pkcs11KeyStore) -> None:
    handle = token_store.generate("ecos-ds", key_usage=KeyUsage.DIGITAL_SIGNATURE)
    assert isinstance(handle, KeyHandle)
    for message in (b"", b"CS02b 0x0106", bytes(1000)):
        digest = hashlib.sha256(message).digest()
        verify(handle.public_key(), digest, handle.sign_digest(digest))


def test_generated_key_agreement_equals_the_peer_side(token_store: Pkcs11KeyStore) -> None:
    handle = token_store.generate("ecos-ka", key_usage=KeyUsage.KEY_AGREEMENT)
    peer = ec.generate_private_key(ec.SECP256R1())
    assert handle.exchange(peer.public_key()) == peer.exchange(ec.ECDH(), handle.public_key())


@pytest.mark.parametrize("how", ["generated", "imported"])
def test_private_keys_are_sensitive_unextractable_and_unreadable(
    softhsm_token: SoftHsmToken, token_store: Pkcs11KeyStore, how: str
) -> None:
    import pkcs11

    if how == "generated":
        token_store.generate("k", key_usage=KeyUsage.DIGITAL_SIGNATURE)
    else:
        token_store.import_private_key("k", ec.generate_private_key(ec.SECP256R1()))
    session, private = _inspect(softhsm_token, "k")
    try:
        assert private[pkcs11.Attribute.SENSITIVE] is True
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
        assert private[pkcs11.Attribute.TOKEN] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[pkcs11.Attribute.VALUE]
    finally:
        session.close()


@pytest.mark.parametrize(
    ("usage", "sign", "derive"),
    [
        (KeyUsage.DIGITAL_SIGNATURE, True, False),
        (KeyUsage.KEY_AGREEMENT, False, True),
        (None, True, True),
    ],
)
def test_token_key_attributes_follow_the_smki_usage(
    softhsm_token: SoftHsmToken,
    token_store: Pkcs11KeyStore,
    usage: KeyUsage | None,
    sign: bool,
    derive: bool,
) -> None:
    # CKA_SIGN/CKA_DERIVE false make the token refuse the operation itself.
    import pkcs11

    token_store.generate("k", key_usage=usage)
    session, private = _inspect(softhsm_token, "k")
    try:
        assert private[pkcs11.Attribute.SIGN] is sign
        assert private[pkcs11.Attribute.DERIVE] is derive
        assert private[pkcs11.Attribute.DECRYPT] is False
    finally:
        session.close()
    assert token_store.key("k").info.key_usage is usage


def test_zaz1_keys_sign_and_derive_identically_in_both_stores(
    token_store: Pkcs11KeyStore,
) -> None:
    software = open_keystore([reference_path("keystore", "zaz1-keystore.json")])
    for name in ZAZ1_NAMES:
        key, certificate = _zaz1(name)
        token_store.import_private_key(name, key, certificate_der=certificate)
    digest = hashlib.sha256(b"6.23 SignedInfo").digest()
    peer = ec.generate_private_key(ec.SECP256R1())
    for store in (software, token_store):
        tcos = store.key("Z1-transitionalCoS-ds")
        verify(_zaz1("Z1-transitionalCoS-ds")[0].public_key(), digest, tcos.sign_digest(digest))
        acb = store.key("Z1-accessControlBroker-ka")
        own = _zaz1("Z1-accessControlBroker-ka")[0]
        assert acb.exchange(peer.public_key()) == peer.exchange(ec.ECDH(), own.public_key())
    for name in ZAZ1_NAMES:
        assert token_store.key(name).info == software.key(name).info


def test_imported_zaz1_keys_are_found_by_eui_usage_and_role(token_store: Pkcs11KeyStore) -> None:
    for name in ZAZ1_NAMES:
        key, certificate = _zaz1(name)
        token_store.import_private_key(name, key, certificate_der=certificate)
    found = token_store.lookup(
        Eui64.parse("90B3D51F30000002"),
        KeyUsage.KEY_AGREEMENT,
        RemotePartyRole.ACCESS_CONTROL_BROKER,
    )
    assert found.name == "Z1-accessControlBroker-ka"
    with pytest.raises(WrongKeyUsage):
        found.sign_digest(bytes(32))
    with pytest.raises(WrongKeyUsage):
        token_store.key("Z1-transitionalCoS-ds").exchange(
            ec.generate_private_key(ec.SECP256R1()).public_key()
        )


def test_keys_and_certificates_persist_across_sessions(softhsm_token: SoftHsmToken) -> None:
    key, certificate = _zaz1("Z1-transitionalCoS-ds")
    with Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, softhsm_token.user_pin) as s:
        s.import_private_key("tcos", key, certificate_der=certificate)
        s.generate("fresh")
    with Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, softhsm_token.user_pin) as s:
        assert s.names() == ("fresh", "tcos")
        tcos = s.key("tcos")
        assert tcos.certificate_der == certificate
        assert tcos.info.role is RemotePartyRole.TRANSITIONAL_COS
        digest = hashlib.sha256(b"again").digest()
        verify(key.public_key(), digest, tcos.sign_digest(digest))


def test_certificate_only_entries_and_late_certificates(token_store: Pkcs11KeyStore) -> None:
    key, certificate = _zaz1("mdr-ds")  # a certificate cryptography itself refuses
    only = token_store.add_certificate("mdr-ds", certificate)
    assert not only.info.has_private_key
    assert only.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(PrivateKeyMissing):
        only.sign_digest(bytes(32))
    joined = token_store.import_private_key("mdr-ds", key)
    assert joined.info.has_private_key and joined.certificate_der == certificate
    digest = hashlib.sha256(b"x").digest()
    verify(key.public_key(), digest, joined.sign_digest(digest))


def test_transfer_moves_a_software_store_into_the_token(token_store: Pkcs11KeyStore) -> None:
    software = open_keystore([reference_path("keystore", "zaz1-keystore.json")])
    moved = transfer(software, token_store, ZAZ1_NAMES)
    assert [h.name for h in moved] == list(ZAZ1_NAMES)
    assert token_store.names() == tuple(sorted(ZAZ1_NAMES))


def test_unknown_label_duplicate_and_bad_digest_raise_typed_errors(
    token_store: Pkcs11KeyStore,
) -> None:
    with pytest.raises(KeyNotFound):
        token_store.key("nobody")
    handle = token_store.generate("k")
    with pytest.raises(DuplicateKey):
        token_store.generate("k")
    with pytest.raises(DuplicateKey):
        token_store.import_private_key("k", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InvalidDigest):
        handle.sign_digest(b"short")


def test_wrong_pin_is_a_token_error(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(TokenError) as caught:
        Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, "9999")
    assert caught.value.reason is TokenFailure.PIN_INCORRECT
    assert "9999" not in str(caught.value)


def test_wrong_pin_is_refused_while_another_store_holds_the_login(
    token_store: Pkcs11KeyStore, softhsm_token: SoftHsmToken
) -> None:
    with pytest.raises(TokenError) as caught:
        Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, "9999")
    assert caught.value.reason is TokenFailure.PIN_INCORRECT


def test_stores_on_one_token_share_the_login_and_outlive_each_other(
    token_store: Pkcs11KeyStore, softhsm_token: SoftHsmToken
) -> None:
    # PKCS#11 login is per process: closing one store must not log the other out.
    handle = token_store.generate("shared", key_usage=KeyUsage.DIGITAL_SIGNATURE)
    second = Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, softhsm_token.user_pin)
    digest = hashlib.sha256(b"two stores").digest()
    verify(handle.public_key(), digest, second.key("shared").sign_digest(digest))
    second.close()
    verify(handle.public_key(), digest, handle.sign_digest(digest))


def test_concurrent_signing_from_threads_is_serialised_per_store(
    token_store: Pkcs11KeyStore,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    handle = token_store.generate("busy", key_usage=KeyUsage.DIGITAL_SIGNATURE)
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(64)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        signatures = list(pool.map(handle.sign_digest, digests))
    for digest, signature in zip(digests, signatures, strict=True):
        verify(handle.public_key(), digest, signature)


def test_unknown_token_and_missing_module_are_token_errors(
    softhsm_token: SoftHsmToken, tmp_path: Any
) -> None:
    with pytest.raises(TokenError) as caught:
        Pkcs11KeyStore(softhsm_token.module, "no-such-token", softhsm_token.user_pin)
    assert caught.value.reason is TokenFailure.TOKEN_NOT_FOUND
    with pytest.raises(TokenError) as caught:
        Pkcs11KeyStore(tmp_path / "missing.so", softhsm_token.label, softhsm_token.user_pin)
    assert caught.value.reason is TokenFailure.MODULE_UNAVAILABLE


def test_closed_store_refuses_operations(softhsm_token: SoftHsmToken) -> None:
    store = Pkcs11KeyStore(softhsm_token.module, softhsm_token.label, softhsm_token.user_pin)
    handle = store.generate("k")
    store.close()
    with pytest.raises(TokenError) as caught:
        handle.sign_digest(bytes(32))
    assert caught.value.reason is TokenFailure.SESSION_CLOSED


def test_configuration_comes_from_arguments_then_environment() -> None:
    environ = {
        "OPENECOS_PKCS11_MODULE": "/opt/hsm.so",
        "OPENECOS_PKCS11_TOKEN": "ecos",
        "OPENECOS_PKCS11_PIN": "0000",
    }
    assert Pkcs11Config.resolve(environ=environ) == Pkcs11Config("/opt/hsm.so", "ecos", "0000")
    assert Pkcs11Config.resolve(token_label="other", environ=environ).token_label == "other"
    default = Pkcs11Config.resolve(token_label="t", user_pin="1", environ={})
    assert default.module == "/usr/lib/softhsm/libsofthsm2.so"
    assert "0000" not in repr(Pkcs11Config.resolve(environ=environ))
    with pytest.raises(TokenError) as caught:
        Pkcs11Config.resolve(token_label="t", environ={})
    assert caught.value.reason is TokenFailure.CONFIGURATION
