"""XMLDSig in the DUIS profile: sign and verify enveloped ECDSA P-256 signatures.

Theory of operation (docs/duis-xmldsig-smki.md §2.2, §4.3). The profile is
exactly what DCC Boxed's JDK signer writes, and nothing else is accepted:

- one ``ds:Signature``, the last element child of the document element, with
  ``SignedInfo``, ``SignatureValue`` and ``KeyInfo`` and no other children;
- SignedInfo canonicalised with exclusive C14N 1.0, no InclusiveNamespaces;
- SignatureMethod ecdsa-sha256; SignatureValue base64 of raw ``r‖s`` (64
  bytes), whitespace (the JDK's CR LF wrapping) removed before decoding;
- one Reference, ``URI=""``, whose only Transform is enveloped-signature,
  DigestMethod sha256. The digest input is the enveloped node-set rendered
  with INCLUSIVE Canonical XML 1.0 without comments (§0 fact 1: the JDK
  does this, an exc-c14n digest never matches real messages);
- KeyInfo is ``X509Data/X509IssuerSerial`` only: the issuer in RFC 2253 form,
  the serial in decimal. The certificate comes from the caller's resolver.

Because the Reference covers the whole document, the parsed tree *is* the
signed content once :func:`verify_signature` returns, so signature-wrapping
has nowhere to hide: a second Signature, a Signature elsewhere, an Object, a
second Reference or a non-empty URI are all refused.

Verification raises :class:`SignatureError` (never returns False). Signing
takes a :class:`DigestSigner` (``sign_digest(sha256) -> r‖s``), the interface
``openecos.keys`` stores implement, so private keys stay in their store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from openecos.duis.document import DEFAULT_MAX_SIZE, NS_DS, parse_document
from openecos.duis.errors import DuisFailure, SignatureError, SigningFailed, XmlRefused

ALG_EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ALG_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALG_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALG_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

_DS = f"{{{NS_DS}}}"
_SIGNATURE = f"{_DS}Signature"
_XML_WHITESPACE = re.compile(r"[ \t\r\n]+")
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)")
_RFC2253_SPLIT = re.compile(r"(?<!\\),")


class DigestSigner(Protocol):
    """Signs a 32-byte SHA-256 digest with ECDSA P-256; returns the 64-byte raw ``r‖s``."""

    def sign_digest(self, digest: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """A signer and the certificate it signs for, as KeyInfo names it."""

    signer: DigestSigner
    issuer: str  # RFC 2253, e.g. "CN=Z1,OU=07"
    serial: int

    @classmethod
    def for_certificate(cls, signer: DigestSigner, certificate_der: bytes) -> SigningIdentity:
        cert = x509.load_der_x509_certificate(certificate_der)
        return cls(signer, cert.issuer.rfc4514_string(), cert.serial_number)


#: What a resolver returns: the certificate DER, or the bare public key.
ResolvedKey = bytes | ec.EllipticCurvePublicKey

#: Looks a signing certificate up by (normalised RFC 2253 issuer, serial); None if unknown.
CertificateResolver = Callable[[str, int], ResolvedKey | None]


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a verified signature tells the caller."""

    issuer: str  # normalised RFC 2253 issuer from KeyInfo
    serial: int
    certificate_der: bytes | None  # None when the resolver gave a bare key
    signed_bytes: bytes  # inclusive C14N of the document without the Signature


def normalise_issuer(name: str) -> str:
    """RFC 2253 text in one spelling: no blanks around ``,``/``=``, types upper-cased.

    The JDK writes ``CN=Z1,OU=07``; templates show ``CN=U1, OU=07``; both must
    find the same certificate (docs §4.3 step 3).
    """
    parts = []
    for rdn in _RFC2253_SPLIT.split(name.strip()):
        attr, sep, value = rdn.partition("=")
        if not sep:
            parts.append(rdn.strip())
            continue
        parts.append(f"{attr.strip().upper()}={value.strip()}")
    return ",".join(parts)


def issuer_of(certificate_der: bytes) -> str:
    """The normalised RFC 2253 issuer of a certificate, as a resolver receives it."""
    return _issuer_and_serial(certificate_der)[0]


# Certificates recur: every request of a user is signed with the same one, so what
# is read from a DER certificate is read once (bounded; the values are immutable).
@lru_cache(maxsize=4096)
def _issuer_and_serial(certificate_der: bytes) -> tuple[str, int]:
    cert = x509.load_der_x509_certificate(certificate_der)
    return normalise_issuer(cert.issuer.rfc4514_string()), cert.serial_number


@lru_cache(maxsize=4096)
def _certificate_public_key(certificate_der: bytes) -> CertificatePublicKeyTypes:
    """Raises ValueError for a certificate or key ``cryptography`` cannot read."""
    return x509.load_der_x509_certificate(certificate_der).public_key()


# -- verification ---------------------------------------------------------------------------


def _fail(reason: str, failure: DuisFailure = DuisFailure.SIGNATURE_PROFILE) -> SignatureError:
    return SignatureError(reason, failure=failure)


def _children(element: etree._Element) -> list[etree._Element]:
    # Comments and PIs are removed at parse time; anything that is not an
    # element here (an entity reference) is refused by the profile.
    kids = list(element)
    for kid in kids:
        if not isinstance(kid.tag, str):
            raise _fail("non-element node inside the signature")
    return kids


def _expect(element: etree._Element, names: list[str]) -> list[etree._Element]:
    kids = _children(element)
    tags = [k.tag for k in kids]
    expected = [f"{_DS}{n}" for n in names]
    if tags != expected:
        local = [etree.QName(t).localname if isinstance(t, str) else "?" for t in tags]
        raise _fail(f"{etree.QName(element).localname} holds {local}, the DUIS profile {names}")
    return kids


def _algorithm(element: etree._Element, expected: str) -> None:
    if dict(element.attrib) != {"Algorithm": expected}:
        raise _fail(
            f"{etree.QName(element).localname} Algorithm {element.get('Algorithm')!r}, "
            f"the DUIS profile requires {expected}"
        )
    if len(element) or (element.text or "").strip():
        raise _fail(f"{etree.QName(element).localname} must be empty")


def _text(element: etree._Element) -> str:
    if len(element):
        raise _fail(f"{etree.QName(element).localname} must hold text only")
    if element.attrib:
        raise _fail(f"{etree.QName(element).localname} carries attributes")
    return element.text or ""


def _strict_b64(text: str, what: str) -> bytes:
    compact = _XML_WHITESPACE.sub("", text)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(f"{what} is not base64", DuisFailure.SIGNATURE_INVALID) from exc
    if base64.b64encode(raw).decode("ascii") != compact:
        raise _fail(f"{what} is not canonical base64", DuisFailure.SIGNATURE_INVALID)
    return raw


def find_signature(root: etree._Element) -> etree._Element:
    """The document's one ``ds:Signature``, last child of the root; raises otherwise."""
    signatures = list(root.iter(_SIGNATURE))
    if not signatures:
        raise _fail("the message carries no ds:Signature", DuisFailure.SIGNATURE_MISSING)
    if len(signatures) != 1:
        raise _fail(f"{len(signatures)} ds:Signature elements, the DUIS profile allows one")
    signature = signatures[0]
    if signature.getparent() is not root:
        raise _fail("ds:Signature must be a child of the document element")
    following = signature.getnext()
    while following is not None:
        if isinstance(following.tag, str):
            raise _fail("ds:Signature must be the last element of the document")
        following = following.getnext()
    return signature


def verify_signature(
    root: etree._Element, resolve_certificate: CertificateResolver
) -> VerifiedSignature:
    """Verifies the document's DUIS-profile signature; raises :class:`SignatureError`.

    ``resolve_certificate(issuer, serial)`` receives the KeyInfo issuer in
    :func:`normalise_issuer` form and the decimal serial as an int.
    """
    signature = find_signature(root)
    if set(signature.attrib) - {"Id"}:
        raise _fail("ds:Signature carries unexpected attributes")
    signed_info, signature_value, key_info = _expect(
        signature, ["SignedInfo", "SignatureValue", "KeyInfo"]
    )
    if signed_info.attrib:
        raise _fail("ds:SignedInfo carries attributes")
    c14n_method, signature_method, reference = _expect(
        signed_info, ["CanonicalizationMethod", "SignatureMethod", "Reference"]
    )
    _algorithm(c14n_method, ALG_EXC_C14N)
    _algorithm(signature_method, ALG_ECDSA_SHA256)
    if dict(reference.attrib) != {"URI": ""}:
        raise _fail(f'the Reference must have URI="" only, got {dict(reference.attrib)}')
    transforms, digest_method, digest_value = _expect(
        reference, ["Transforms", "DigestMethod", "DigestValue"]
    )
    if transforms.attrib:
        raise _fail("ds:Transforms carries attributes")
    (transform,) = _expect(transforms, ["Transform"])
    _algorithm(transform, ALG_ENVELOPED)
    _algorithm(digest_method, ALG_SHA256)
    expected_digest = _strict_b64(_text(digest_value), "DigestValue")
    if len(expected_digest) != 32:
        raise _fail("DigestValue is not a SHA-256 digest", DuisFailure.SIGNATURE_INVALID)
    raw_signature = _strict_b64(_text(signature_value), "SignatureValue")
    if len(raw_signature) != 64:
        raise _fail(
            f"SignatureValue is {len(raw_signature)} bytes, P-256 r||s is 64",
            DuisFailure.SIGNATURE_INVALID,
        )

    if key_info.attrib:
        raise _fail("ds:KeyInfo carries attributes")
    (x509_data,) = _expect(key_info, ["X509Data"])
    (issuer_serial,) = _expect(x509_data, ["X509IssuerSerial"])
    issuer_name, serial_number = _expect(issuer_serial, ["X509IssuerName", "X509SerialNumber"])
    issuer = normalise_issuer(_text(issuer_name))
    serial_text = _text(serial_number).strip(" \t\r\n")
    if not _DECIMAL.fullmatch(serial_text) or len(serial_text) > 50:
        raise _fail(f"X509SerialNumber {serial_text[:60]!r} is not a decimal serial")
    serial = int(serial_text)

    resolved = resolve_certificate(issuer, serial)
    if resolved is None:
        raise _fail(
            f"no certificate known for issuer {issuer!r} serial {serial}",
            DuisFailure.UNKNOWN_SIGNING_CERTIFICATE,
        )
    certificate_der, public_key = _public_key(resolved, issuer, serial)

    # Reference: enveloped-signature transform, then inclusive C14N 1.0.
    signed_bytes = canonical_without_signature(root, signature)
    if not hmac.compare_digest(hashlib.sha256(signed_bytes).digest(), expected_digest):
        raise _fail("DigestValue does not match the document", DuisFailure.DIGEST_MISMATCH)

    signed_info_c14n = _c14n(signed_info, exclusive=True)
    r = int.from_bytes(raw_signature[:32], "big")
    s = int.from_bytes(raw_signature[32:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signed_info_c14n, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise _fail("SignatureValue does not verify", DuisFailure.SIGNATURE_INVALID) from exc
    return VerifiedSignature(issuer, serial, certificate_der, signed_bytes)


def _public_key(
    resolved: ResolvedKey, issuer: str, serial: int
) -> tuple[bytes | None, ec.EllipticCurvePublicKey]:
    if isinstance(resolved, ec.EllipticCurvePublicKey):
        key, der = resolved, None
    elif isinstance(resolved, bytes):
        try:
            loaded = _certificate_public_key(resolved)
            found_issuer, found_serial = _issuer_and_serial(resolved)
        except ValueError as exc:
            raise _fail(
                f"the certificate for serial {serial} cannot be read: {exc}",
                DuisFailure.UNKNOWN_SIGNING_CERTIFICATE,
            ) from exc
        # The resolver is the caller's store; make sure it answered the question asked.
        if found_serial != serial or found_issuer != issuer:
            raise _fail(
                "the resolver returned a certificate with another issuer/serial",
                DuisFailure.UNKNOWN_SIGNING_CERTIFICATE,
            )
        if not isinstance(loaded, ec.EllipticCurvePublicKey):
            raise _fail("the signing certificate's key is not EC", DuisFailure.SIGNATURE_PROFILE)
        key, der = loaded, resolved
    else:
        raise _fail("the resolver returned neither DER nor an EC public key")
    if not isinstance(key.curve, ec.SECP256R1):
        raise _fail("the signing key is not P-256", DuisFailure.SIGNATURE_PROFILE)
    return der, key


def canonical_without_signature(root: etree._Element, signature: etree._Element) -> bytes:
    """Inclusive C14N 1.0 (no comments) of the document with ``signature`` taken out.

    XMLDSig's enveloped transform removes the Signature element only: its tail
    text stays in the node-set (docs §2.3), whereas lxml's ``remove()`` takes
    the tail along, so the tail is moved onto the preceding node. The work is
    done on a copy: detaching and re-inserting the original would let lxml
    rewrite namespace prefixes inside it (``xmlns:ds`` folded into the root's
    ``ns3``), which changes the exc-C14N of SignedInfo.
    """
    if signature.getparent() is not root:
        raise _fail("ds:Signature must be a child of the document element")
    copy = deepcopy(root)
    _remove_keeping_tail(copy[root.index(signature)], keep_blank=True)
    return _c14n(copy.getroottree(), exclusive=False)


def _c14n(node: etree._Element | etree._ElementTree, *, exclusive: bool) -> bytes:
    """Canonical XML 1.0 without comments; a document C14N cannot render is refused.

    libxml2 refuses e.g. relative namespace URIs (C14N 1.0 §2.3): such a
    document cannot carry a DUIS signature, whoever sent it.
    """
    try:
        canonical: bytes = etree.tostring(
            node, method="c14n", exclusive=exclusive, with_comments=False
        )
    except etree.C14NError as exc:
        raise XmlRefused(
            f"document cannot be canonicalised: {exc}", failure=DuisFailure.MALFORMED_XML
        ) from exc
    return canonical


# -- signing --------------------------------------------------------------------------------

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>'


def sign_document(root: etree._Element, identity: SigningIdentity) -> bytes:
    """Appends a DUIS-profile signature to ``root`` and returns the minified document.

    ``root`` should hold no whitespace-only text between elements (build it
    that way, or parse with ``remove_blank_text``): the JDK strips such
    whitespace before verifying, so a pretty-printed signed message fails at
    DCC Boxed (docs §0 fact 5). Any existing ``ds:Signature`` is replaced.
    """
    for old in list(root.iter(_SIGNATURE)):
        _remove_keeping_tail(old)
    digest = hashlib.sha256(_c14n(root.getroottree(), exclusive=False)).digest()

    ds_bound = root.nsmap.get("ds") == NS_DS
    signature = etree.SubElement(root, _SIGNATURE, nsmap=None if ds_bound else {"ds": NS_DS})
    signed_info = etree.SubElement(signature, f"{_DS}SignedInfo")
    etree.SubElement(signed_info, f"{_DS}CanonicalizationMethod", Algorithm=ALG_EXC_C14N)
    etree.SubElement(signed_info, f"{_DS}SignatureMethod", Algorithm=ALG_ECDSA_SHA256)
    reference = etree.SubElement(signed_info, f"{_DS}Reference", URI="")
    transforms = etree.SubElement(reference, f"{_DS}Transforms")
    etree.SubElement(transforms, f"{_DS}Transform", Algorithm=ALG_ENVELOPED)
    etree.SubElement(reference, f"{_DS}DigestMethod", Algorithm=ALG_SHA256)
    etree.SubElement(reference, f"{_DS}DigestValue").text = base64.b64encode(digest).decode()
    value = etree.SubElement(signature, f"{_DS}SignatureValue")
    key_info = etree.SubElement(signature, f"{_DS}KeyInfo")
    x509_data = etree.SubElement(key_info, f"{_DS}X509Data")
    issuer_serial = etree.SubElement(x509_data, f"{_DS}X509IssuerSerial")
    etree.SubElement(issuer_serial, f"{_DS}X509IssuerName").text = identity.issuer
    etree.SubElement(issuer_serial, f"{_DS}X509SerialNumber").text = str(identity.serial)

    signed_info_c14n = _c14n(signed_info, exclusive=True)
    raw = identity.signer.sign_digest(hashlib.sha256(signed_info_c14n).digest())
    if not isinstance(raw, bytes) or len(raw) != 64:
        root.remove(signature)
        raise SigningFailed("the signer must return the 64-byte raw r||s of a P-256 signature")
    value.text = base64.b64encode(raw).decode()
    document: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    return _XML_DECLARATION + document


def resign(data: bytes, identity: SigningIdentity, *, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    """Parses ``data`` safely, minified, and signs it afresh (any old Signature dropped)."""
    return sign_document(parse_document(data, max_size=max_size, minify=True), identity)


def _remove_keeping_tail(element: etree._Element, *, keep_blank: bool = False) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail and (keep_blank or tail.strip()):
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


class PrivateKeySigner:
    """A :class:`DigestSigner` over a ``cryptography`` EC private key (tests, tools).

    Production keys live behind ``openecos.keys``; this adapter exists so a
    test or a DCC Boxed-style tool can sign with a key it holds in memory.
    """

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign_digest(self, digest: bytes) -> bytes:
        der = self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
