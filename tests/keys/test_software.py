"""SoftwareKeyStore: signatures, ECDH, usage rules, custody bookkeeping, bad keys."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from openecos.gbcs.codes import KeyUsage
from openecos.keys import (
    DuplicateKey,
    InvalidDigest,
    InvalidKeyMaterial,
    InvalidPeerKey,
    KeyHandle,
    KeyNotFound,
    KeyOperation,
    PrivateKeyMissing,
    SoftwareKeyStore,
    WrongKeyUsage,
    load_private_key,
)
from tests.keys.conftest import make_certificate, pem_key


def verify(public_key: ec.EllipticCurvePublicKey, digest: bytes, raw: bytes) -> None:
    """The proof: r‖s converted with encode_dss_signature verifies with cryptography."""
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


@settings(max_examples=20, deadline=None)
@given(message=st.binary(max_size=200))
def test_generated_key_signatures_verify_with_cryptography(message: bytes) -> None:
    store = SoftwareKeyStore()
    handle = store.generate("k", key_usage=KeyUsage.DIGITAL_SIGNATURE)
    digest = hashlib.sha256(message).digest()
    verify(handle.public_key(), digest, handle.sign_digest(digest))


def test_signature_over_one_digest_does_not_verify_another() -> None:
    handle = SoftwareKeyStore().generate("k")
    raw = handle.sign_digest(hashlib.sha256(b"a").digest())
    with pytest.raises(InvalidSignature):
        verify(handle.public_key(), hashlib.sha256(b"b").digest(), raw)


def test_exchange_equals_the_peer_side_computation() -> None:
    handle = SoftwareKeyStore().generate("ka", key_usage=KeyUsage.KEY_AGREEMENT)
    peer = ec.generate_private_key(ec.SECP256R1())
    secret = handle.exchange(peer.public_key())
    assert len(secret) == 32
    assert secret == peer.exchange(ec.ECDH(), handle.public_key())


def test_handles_satisfy_the_keyhandle_protocol() -> None:
    handle = SoftwareKeyStore().generate("k")
    assert isinstance(handle, KeyHandle)


def test_key_agreement_key_refuses_to_sign() -> None:
    handle = SoftwareKeyStore().generate("ka", key_usage=KeyUsage.KEY_AGREEMENT)
    with pytest.raises(WrongKeyUsage) as caught:
        handle.sign_digest(bytes(32))
    assert caught.value.operation is KeyOperation.SIGN
    assert caught.value.name == "ka"


def test_digital_signature_key_refuses_ecdh() -> None:
    handle = SoftwareKeyStore().generate("ds", key_usage=KeyUsage.DIGITAL_SIGNATURE)
    with pytest.raises(WrongKeyUsage) as caught:
        handle.exchange(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert caught.value.operation is KeyOperation.EXCHANGE


@pytest.mark.parametrize("length", [0, 20, 31, 33, 48, 64])
def test_sign_digest_takes_exactly_32_bytes(length: int) -> None:
    handle = SoftwareKeyStore().generate("k")
    with pytest.raises(InvalidDigest) as caught:
        handle.sign_digest(bytes(length))
    assert caught.value.length == length


def test_exchange_refuses_a_p384_peer() -> None:
    handle = SoftwareKeyStore().generate("k")
    with pytest.raises(InvalidPeerKey):
        handle.exchange(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_unknown_name_raises_key_not_found() -> None:
    with pytest.raises(KeyNotFound, match="nobody"):
        SoftwareKeyStore().key("nobody")


def test_generating_an_existing_name_is_a_duplicate() -> None:
    store = SoftwareKeyStore()
    store.generate("k")
    with pytest.raises(DuplicateKey):
        store.generate("k")


def test_certificate_only_entry_verifies_but_cannot_sign() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = make_certificate(key, key, ou="02", eui=bytes(8), usage="digitalSignature").public_bytes(
        serialization.Encoding.DER
    )
    store = SoftwareKeyStore()
    handle = store.add_certificate("peer", der)
    assert handle.info.has_private_key is False
    assert handle.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(PrivateKeyMissing):
        handle.sign_digest(bytes(32))


def test_key_and_certificate_given_apart_join_into_one_entry() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = make_certificate(key, key, ou="05", eui=bytes(8), usage="digitalSignature").public_bytes(
        serialization.Encoding.DER
    )
    store = SoftwareKeyStore()
    store.add_certificate("tcos", der)
    handle = store.import_private_key("tcos", key)
    assert handle.info.has_private_key and handle.certificate_der == der
    assert handle.info.key_usage is KeyUsage.DIGITAL_SIGNATURE
    assert store.names() == ("tcos",)


def test_certificate_for_another_key_is_refused() -> None:
    key, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    der = make_certificate(other, other, ou="02", eui=bytes(8), usage="keyAgreement").public_bytes(
        serialization.Encoding.DER
    )
    store = SoftwareKeyStore()
    with pytest.raises(InvalidKeyMaterial, match="does not certify"):
        store.import_private_key("k", key, certificate_der=der)
    store.import_private_key("k", key)
    with pytest.raises(InvalidKeyMaterial, match="does not certify"):
        store.add_certificate("k", der)


def test_declared_usage_must_agree_with_the_certificate() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = make_certificate(key, key, ou="02", eui=bytes(8), usage="keyAgreement").public_bytes(
        serialization.Encoding.DER
    )
    with pytest.raises(InvalidKeyMaterial, match="keyAgreement"):
        SoftwareKeyStore().import_private_key(
            "k", key, key_usage=KeyUsage.DIGITAL_SIGNATURE, certificate_der=der
        )


def test_load_private_key_reads_pem_and_der_pkcs8_and_sec1() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    forms = [
        pem_key(key),
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    ]
    for data in forms:
        assert load_private_key(data).private_numbers() == key.private_numbers()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a readable private key"),
        (b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n", "not a readable"),
        (b"\x30\x03\x02\x01\x00", "not a readable"),
    ],
)
def test_junk_key_bytes_raise_invalid_key_material(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidKeyMaterial, match=reason):
        load_private_key(data, "junk.pem")


def test_encrypted_rsa_and_p384_keys_are_refused_with_reasons() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    encrypted = p256.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(InvalidKeyMaterial, match="encrypted"):
        load_private_key(encrypted)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidKeyMaterial, match="P-256"):
        load_private_key(pem_key(rsa_key))  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyMaterial, match="P-256"):
        load_private_key(pem_key(ec.generate_private_key(ec.SECP384R1())))


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=300))
def test_hostile_key_bytes_only_ever_raise_invalid_key_material(data: bytes) -> None:
    with contextlib.suppress(InvalidKeyMaterial):
        load_private_key(data)
