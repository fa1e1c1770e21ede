"""The errors of the ``smki`` part: one family, each carrying a reason enum.

``CertificateError`` means "these bytes are not a certificate this project can
read"; ``PathValidationError`` means "a readable certificate that is not
trusted for this use" and names the check that failed, so a caller can map it
onto a DUIS response code or a GBCS status code without parsing a message.
"""

from __future__ import annotations

from enum import StrEnum

from openecos.errors import OpenEcosError


class SmkiError(OpenEcosError):
    """Base of the errors raised by ``openecos.smki``."""


class CertificateProblem(StrEnum):
    """Why bytes could not be read as an SMKI certificate."""

    MALFORMED_DER = "malformed DER"
    NOT_PEM = "no PEM certificate block"
    UNSUPPORTED_VERSION = "not an X.509 v3 certificate"
    BAD_NAME = "malformed distinguished name"
    BAD_ROLE = "OU is not a remote party role"
    BAD_ENTITY_ID = "x500UniqueIdentifier is not an 8-byte EUI-64"
    BAD_DEVICE_ID = "hardwareModuleName is not an 8-byte EUI-64"
    BAD_TIME = "malformed validity time"
    BAD_EXTENSION = "malformed or duplicated extension"
    UNSUPPORTED_KEY = "public key is not an elliptic-curve key"


class CertificateError(SmkiError, ValueError):
    """Bytes that are not a readable SMKI certificate."""

    def __init__(self, reason: CertificateProblem, detail: str, offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{reason.value}: {detail}{where}")
        self.reason = reason
        self.detail = detail
        self.offset = offset


class PathValidationFailure(StrEnum):
    """The check of certification path validation that failed."""

    EXPIRED = "certificate expired"
    NOT_YET_VALID = "certificate not yet valid"
    WRONG_ISSUER = "issuer name or key identifier does not match"
    BAD_SIGNATURE = "signature does not verify"
    UNSUPPORTED_ALGORITHM = "signature algorithm not supported"
    NOT_A_CA = "issuer is not a CA allowed to sign certificates"
    PATH_TOO_LONG = "path longer than a pathLenConstraint allows"
    MISSING_POLICY = "no accepted certificate policy"
    UNKNOWN_CRITICAL_EXTENSION = "unknown critical extension"
    UNTRUSTED_ROOT = "path does not end at a trust anchor"
    WRONG_ROLE = "leaf has the wrong remote party role"
    WRONG_KEY_USAGE = "leaf has the wrong key usage"
    WRONG_ENTITY = "leaf belongs to another entity or device"


class PathValidationError(SmkiError):
    """A certificate path that is not valid; ``reason`` names the failed check.

    ``depth`` is the position of the offending certificate: 0 for the leaf, 1
    for its issuer, and so on; ``serial`` is that certificate's serial number.
    """

    def __init__(
        self,
        reason: PathValidationFailure,
        detail: str,
        *,
        depth: int,
        serial: int | None,
    ) -> None:
        super().__init__(f"{reason.value} (depth {depth}): {detail}")
        self.reason = reason
        self.detail = detail
        self.depth = depth
        self.serial = serial


class KeystoreError(SmkiError):
    """A key-store or test-PKI file that does not have the expected shape."""
