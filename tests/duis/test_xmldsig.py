"""XMLDSig in the DUIS profile (docs/duis-xmldsig-smki.md §2, §4.3)."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openecos.duis import (
    DuisError,
    DuisFailure,
    DuisSchema,
    PrivateKeySigner,
    SignatureError,
    SigningFailed,
    SigningIdentity,
    normalise_issuer,
    parse_document,
    resign,
    verify_signature,
)
from tests.duis.conftest import Resolver, SignerPki, sample, template_623

DS = "http://www.w3.org/2000/09/xmldsig#"

# Which certificate signed which DCC Boxed sample (docs §3.2), by KeyInfo serial.
SIGNED_SAMPLES = {
    "message.xml": 117636141832862931915946451229571981153,  # Z1-accessControlBroker-ds
    "readfw-response.xml": 50669612984035780968362471400449834504,  # dsp-xml-sign pre-1.4.1
    "read-inventory-response-5.4.xml": 20315062944123339095836004026371736578,  # dSPXmlSign
}


@pytest.mark.parametrize(("name", "serial"), sorted(SIGNED_SAMPLES.items()))
def test_jdk_signed_samples_verify_with_their_certificates(
    name: str, serial: int, zaz1_resolver: Resolver, schema: DuisSchema
) -> None:
    root = parse_document(sample(name))
    schema.validate(root)
    verified = verify_signature(root, zaz1_resolver)
    assert (verified.issuer, verified.serial) == ("CN=Z1,OU=07", serial)
    assert verified.certificate_der is not None
    assert b"Signature" not in verified.signed_bytes


def test_tampered_sample_fails_on_the_signature_value(zaz1_resolver: Resolver) -> None:
    # readfw-response-badsignature.xml: one SignatureValue character changed.
    with pytest.raises(SignatureError) as info:
        verify_signature(parse_document(sample("readfw-response-badsignature.xml")), zaz1_resolver)
    assert info.value.failure is DuisFailure.SIGNATURE_INVALID


def test_unsigned_acknowledgement_has_no_signature(zaz1_resolver: Resolver) -> None:
    with pytest.raises(SignatureError) as info:
        verify_signature(parse_document(sample("acknowledgement-error.xml")), zaz1_resolver)
    assert info.value.failure is DuisFailure.SIGNATURE_MISSING


def test_unknown_certificate_is_its_own_failure() -> None:
    with pytest.raises(SignatureError) as info:
        verify_signature(parse_document(sample("message.xml")), lambda issuer, serial: None)
    assert info.value.failure is DuisFailure.UNKNOWN_SIGNING_CERTIFICATE


def test_resolver_answering_with_another_certificate_is_refused(
    zaz1_resolver: Resolver,
) -> None:
    other = zaz1_resolver("CN=Z1,OU=07", SIGNED_SAMPLES["read-inventory-response-5.4.xml"])
    with pytest.raises(SignatureError) as info:
        verify_signature(parse_document(sample("message.xml")), lambda i, s: other)
    assert info.value.failure is DuisFailure.UNKNOWN_SIGNING_CERTIFICATE


def test_issuer_spelling_is_normalised() -> None:
    assert normalise_issuer("cn=U1, OU = 07") == normalise_issuer("CN=U1,OU=07") == "CN=U1,OU=07"


@pytest.mark.parametrize("kind", ["immediate", "future-dated", "cancellation"])
def test_templates_resigned_with_a_fresh_key_verify_and_validate(
    kind: str, pki: SignerPki, schema: DuisSchema
) -> None:
    signed = resign(template_623(kind), pki.identity)
    assert b"\n" not in signed.split(b"?>", 1)[1]  # minified (docs §0 fact 5)
    root = parse_document(signed)
    schema.validate(root)
    verified = verify_signature(root, pki.resolver)
    assert verified.serial == pki.certificate.serial_number


def test_bare_public_key_resolver_is_accepted(pki: SignerPki) -> None:
    root = parse_document(resign(template_623("immediate"), pki.identity))
    verified = verify_signature(root, lambda i, s: pki.key.public_key())
    assert verified.certificate_der is None


def test_jdk_crlf_wrapping_of_signature_value_verifies(pki: SignerPki) -> None:
    signed = resign(template_623("immediate"), pki.identity)
    value = re.search(rb"<ds:SignatureValue>(.*?)</ds:SignatureValue>", signed)
    assert value is not None
    wrapped = value.group(1)[:76] + b"&#13;\n" + value.group(1)[76:]
    verify_signature(parse_document(signed.replace(value.group(1), wrapped)), pki.resolver)


def test_signer_returning_der_is_refused(pki: SignerPki) -> None:
    class DerSigner:
        def sign_digest(self, digest: bytes) -> bytes:
            return b"\x30" * 70

    identity = SigningIdentity(DerSigner(), pki.identity.issuer, pki.identity.serial)
    with pytest.raises(SigningFailed):
        resign(template_623("immediate"), identity)


def _signed(pki: SignerPki) -> bytes:
    return resign(template_623("immediate"), pki.identity)


HOSTILE = {
    # name: (transform of the signed bytes, expected failure)
    "wrong-signature-method": (
        lambda d: d.replace(b"xmldsig-more#ecdsa-sha256", b"xmldsig-more#ecdsa-sha384"),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "wrong-digest-method": (
        lambda d: d.replace(b"xmlenc#sha256", b"xmlenc#sha512"),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "inclusive-c14n-signedinfo": (
        lambda d: d.replace(
            b"http://www.w3.org/2001/10/xml-exc-c14n#",
            b"http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "extra-transform": (
        lambda d: d.replace(
            b"</ds:Transforms>",
            b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>',
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "reference-to-an-id": (
        lambda d: d.replace(b'<ds:Reference URI="">', b'<ds:Reference URI="#body">'),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "second-reference": (
        lambda d: d.replace(
            b"</ds:SignedInfo>",
            re.search(rb"<ds:Reference .*?</ds:Reference>", d).group(0)  # type: ignore[union-attr]
            + b"</ds:SignedInfo>",
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "two-signatures": (
        lambda d: d.replace(
            b"</sr:Request>",
            re.search(rb"<ds:Signature.*?</ds:Signature>", d).group(0)  # type: ignore[union-attr]
            + b"</sr:Request>",
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "signature-moved-into-body": (
        lambda d: re.sub(
            rb"(<sr:Body>)(.*?)(</sr:Body>)(<ds:Signature.*?</ds:Signature>)",
            rb"\1\2\4\3",
            d,
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "wrapping-object-with-original-body": (
        lambda d: d.replace(
            b"</ds:KeyInfo>",
            b"</ds:KeyInfo><ds:Object>"
            + re.search(rb"<sr:Body>.*?</sr:Body>", d).group(0)  # type: ignore[union-attr]
            + b"</ds:Object>",
        ).replace(b"<sr:ImportMPxN>1312345678333", b"<sr:ImportMPxN>9999999999999"),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "body-changed": (
        lambda d: d.replace(b"<sr:ImportMPxN>1312345678333", b"<sr:ImportMPxN>1312345678334"),
        DuisFailure.DIGEST_MISMATCH,
    ),
    "whitespace-inserted": (
        lambda d: d.replace(b"<sr:Body>", b"<sr:Body>\n  "),
        DuisFailure.DIGEST_MISMATCH,
    ),
    "signature-value-truncated": (
        lambda d: re.sub(
            rb"<ds:SignatureValue>(.*?)</ds:SignatureValue>",
            lambda m: (
                b"<ds:SignatureValue>"
                + base64.b64encode(base64.b64decode(m.group(1))[:48])
                + b"</ds:SignatureValue>"
            ),
            d,
        ),
        DuisFailure.SIGNATURE_INVALID,
    ),
    "signature-value-not-base64": (
        lambda d: re.sub(
            rb"<ds:SignatureValue>(.*?)</ds:SignatureValue>",
            b"<ds:SignatureValue>%%%%</ds:SignatureValue>",
            d,
        ),
        DuisFailure.SIGNATURE_INVALID,
    ),
    "signature-value-non-canonical-padding": (
        lambda d: re.sub(
            rb"<ds:SignatureValue>(.*?)==</ds:SignatureValue>",
            rb"<ds:SignatureValue>\1=</ds:SignatureValue>",
            d,
        ),
        DuisFailure.SIGNATURE_INVALID,
    ),
    "serial-in-hex": (
        lambda d: re.sub(
            rb"<ds:X509SerialNumber>(\d+)</ds:X509SerialNumber>",
            lambda m: (
                b"<ds:X509SerialNumber>0x"
                + format(int(m.group(1)), "x").encode()
                + b"</ds:X509SerialNumber>"
            ),
            d,
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
    "embedded-certificate-instead-of-issuer-serial": (
        lambda d: re.sub(
            rb"<ds:X509IssuerSerial>.*?</ds:X509IssuerSerial>",
            b"<ds:X509Certificate>MIIB</ds:X509Certificate>",
            d,
        ),
        DuisFailure.SIGNATURE_PROFILE,
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_signature_gets_its_own_failure(name: str, pki: SignerPki) -> None:
    transform, failure = HOSTILE[name]
    signed = _signed(pki)
    hostile = transform(signed)
    assert hostile != signed  # the transform applied
    with pytest.raises(SignatureError) as info:
        verify_signature(parse_document(hostile), pki.resolver)
    assert info.value.failure is failure


def test_other_key_does_not_verify(pki: SignerPki) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    root = parse_document(_signed(pki))
    with pytest.raises(SignatureError) as info:
        verify_signature(root, lambda i, s: stranger.public_key())
    assert info.value.failure is DuisFailure.SIGNATURE_INVALID


def test_verification_leaves_the_tree_untouched(pki: SignerPki) -> None:
    from lxml import etree

    root = parse_document(_signed(pki))
    before = etree.tostring(root)
    verify_signature(root, pki.resolver)
    assert etree.tostring(root) == before


def test_signing_with_a_private_key_signer_gives_raw_r_s() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    assert len(PrivateKeySigner(key).sign_digest(b"\x00" * 32)) == 64


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_mutations_never_verify_and_raise_only_duis_errors(
    pki: SignerPki, data: st.DataObject
) -> None:
    signed = _signed(pki)
    position = data.draw(st.integers(0, len(signed) - 1))
    action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
    if action == "flip":
        bit = data.draw(st.integers(0, 7))
        mutated = (
            signed[:position] + bytes([signed[position] ^ (1 << bit)]) + signed[position + 1 :]
        )
    elif action == "delete":
        length = data.draw(st.integers(1, 16))
        mutated = signed[:position] + signed[position + length :]
    else:
        extra = data.draw(st.binary(min_size=1, max_size=8))
        mutated = signed[:position] + extra + signed[position:]
    if mutated == signed:
        return
    original = verify_signature(parse_document(signed), pki.resolver).signed_bytes
    try:
        verified = verify_signature(parse_document(mutated), pki.resolver)
    except DuisError:
        return
    # A mutation may only survive where it leaves the signed content unchanged:
    # the XML declaration, an equivalent spelling C14N normalises away, or the
    # unsigned KeyInfo spelling (``oU=07`` finds the same certificate).
    assert verified.signed_bytes == original
