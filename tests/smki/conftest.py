"""Fixtures of the smki tests: the published certificates and one sandbox test PKI."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from openecos.smki import SmkiCertificate, TestPki, sandbox_pki
from tests.reference import RTDS_623, reference_path, rtds_hex

# docs/duis-xmldsig-smki.md: "Status date: 2026-11-22", when most ZAZ1 certificates had expired.
STATUS_DATE = datetime(2026, 11, 22, tzinfo=UTC)
# A time at which the Z1 generation (2015-10-30 .. 2025-10-29) was valid.
BEFORE_Z1_EXPIRY = datetime(2025, 6, 1, tzinfo=UTC)
# Inside the test PKI's default validity (organisation certificates 2025-01-01 .. 2035).
IN_TEST_PKI_VALIDITY = datetime(2026, 1, 1, tzinfo=UTC)

_TEMPLATE_CERTIFICATE = re.compile(r"<sr:(\w*Certificate)>\s*([A-Za-z0-9+/=\s]+?)\s*</sr:\1>")


def certificates_in_der_stream(data: bytes) -> list[tuple[int, SmkiCertificate]]:
    """Every complete certificate embedded in a GBCS message, with its offset.

    CS02b carries certificates as verbatim DER blobs (docs/gbcs-cs02b.md §4);
    each ``30 82 LL LL`` that reads as a certificate is one.
    """
    found: list[tuple[int, SmkiCertificate]] = []
    for offset in range(len(data) - 4):
        if data[offset] != 0x30 or data[offset + 1] != 0x82:
            continue
        end = offset + 4 + int.from_bytes(data[offset + 2 : offset + 4], "big")
        try:
            found.append((offset, SmkiCertificate.from_der(data[offset:end])))
        except ValueError:  # CertificateError is a ValueError: not a certificate here
            continue
    return found


def rtds_623_certificates() -> list[tuple[int, SmkiCertificate]]:
    """Certificates of RTDS 6.23_CS02bSupplierByTransCoS ..._IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX."""
    return certificates_in_der_stream(
        rtds_hex(RTDS_623, "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX")
    )


def template_certificates(name: str) -> dict[str, list[SmkiCertificate]]:
    """Certificates of a DUIS template (reference/duis/templates/<name>) by element name."""
    text = reference_path("duis", "templates", name).read_text()
    found: dict[str, list[SmkiCertificate]] = {}
    for element, body in _TEMPLATE_CERTIFICATE.findall(text):
        der = base64.b64decode("".join(body.split()))
        found.setdefault(element, []).append(SmkiCertificate.from_der(der))
    return found


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return sandbox_pki()
