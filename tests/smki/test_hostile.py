"""Hostile and mutated DER: the only exception ever raised is CertificateError.

And a mutated certificate that still parses is judged by path validation with
a PathValidationError, never another exception.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openecos.smki import (
    ZAZ1_ORGANISATION_POLICY,
    CertificateError,
    PathValidationError,
    SmkiCertificate,
    ValidationTime,
    load_pem_certificates,
    validate_path,
)
from tests.reference import device_certificate_pem, zaz1_entry
from tests.smki.conftest import BEFORE_Z1_EXPIRY, rtds_623_certificates

# Reference certificates, mutated: reference/keystore/zaz1-keystore.json (Z1-supplier-ds,
# mdr-ds), reference/keystore/devices/00db1234567890a0-ds.pem, and the RTDS 6.23 Z1 CA.
SEEDS = [
    SmkiCertificate.from_pem(zaz1_entry("Z1-supplier-ds")["certificate"]).der,
    SmkiCertificate.from_pem(zaz1_entry("mdr-ds")["certificate"]).der,
    SmkiCertificate.from_pem(device_certificate_pem("ds")).der,
]
Z1 = rtds_623_certificates()[3][1]


def read_or_certificate_error(data: bytes) -> SmkiCertificate | None:
    try:
        return SmkiCertificate.from_der(data)
    except CertificateError:
        return None


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        position = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and data:
            del data[position]
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_certificate_error(data: bytes) -> None:
    read_or_certificate_error(data)
    read_or_certificate_error(b"\x30\x82" + len(data).to_bytes(2, "big") + data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_certificates_raise_only_certificate_or_path_errors(data: bytes) -> None:
    cert = read_or_certificate_error(data)
    if cert is None:
        return
    with contextlib.suppress(PathValidationError):
        validate_path(
            cert,
            anchors=[Z1],
            time=ValidationTime.at(BEFORE_Z1_EXPIRY),
            policies=(ZAZ1_ORGANISATION_POLICY, "1.2.826.0.1.1800000.1.2.1.4"),
        )


@settings(max_examples=100)
@given(st.text(max_size=200))
def test_hostile_pem_text_raises_only_certificate_error(text: str) -> None:
    with contextlib.suppress(CertificateError):
        load_pem_certificates(f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----")


def test_an_empty_policy_information_is_a_certificate_error() -> None:
    # Found by tests/device/test_hostile.py: certificatePolicies { PolicyInformation {} }
    # once raised IndexError. RFC 5280 §4.2.1.4: policyIdentifier is mandatory.
    from openecos.smki import CertificateError
    from openecos.smki._der import SEQUENCE, encode
    from openecos.smki.extensions import OID_CERTIFICATE_POLICIES, Extension, ExtensionFacts

    empty = encode(SEQUENCE, encode(SEQUENCE, b""))
    with pytest.raises(CertificateError, match="empty PolicyInformation"):
        ExtensionFacts((Extension(OID_CERTIFICATE_POLICIES, True, empty),))
