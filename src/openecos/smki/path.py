"""Certification path validation for SMKI organisation and device certificates.

Theory of operation: a caller hands in the leaf, the path certificates that
came with it (CS02b ``certificationPath``, DUIS ``CertificationPathCertificates``)
and the trust anchors it holds, plus two pieces of configuration: the time to
validate at (or none: GBCS ``ApplyTimeBasedCPVChecks`` = disapply, see
docs/gbcs-cs02b.md §4) and the certificate policy OIDs it accepts. The path is
walked from the leaf upwards in the order given; it ends at the first
certificate whose issuer is a trust anchor, so a path that also carries the
anchor itself (as every CS02b command carries the Z1 CA) is fine. Each link is
checked as RFC 5280 §6.1 asks, in the SMKI subset (docs/duis-xmldsig-smki.md
§3.1): names chained regardless of string type, AKI against SKI where both
exist, the issuer a CA with keyCertSign, pathLenConstraint, validity, the
accepted policy on every non-anchor certificate, no unknown critical
extension, and the ECDSA signature. Trust anchors are trusted as given: their
own validity and signature are not checked (RFC 5280 §6.1.1(d)).

Nothing returns False: every failure raises :class:`PathValidationError` with
a :class:`PathValidationFailure` reason naming the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.errors import PathValidationError, PathValidationFailure
from openecos.smki.extensions import (
    OID_AUTHORITY_KEY_IDENTIFIER,
    OID_BASIC_CONSTRAINTS,
    OID_CERTIFICATE_POLICIES,
    OID_KEY_USAGE,
    OID_SUBJECT_ALT_NAME,
    OID_SUBJECT_KEY_IDENTIFIER,
)

# Policy OIDs seen in the public test material (configuration, not constants of trust).
ZAZ1_ORGANISATION_POLICY = "1.2.826.0.1.8641679.1.2.1.4"  # duis-xmldsig-smki §3.1
RTDS_DEVICE_POLICY = "1.2.826.0.1.1800000.1.2.1.4"  # gbcs-cs02b §7.3

# The extensions this validator understands; any other marked critical is refused.
KNOWN_EXTENSIONS = frozenset(
    {
        OID_KEY_USAGE,
        OID_BASIC_CONSTRAINTS,
        OID_CERTIFICATE_POLICIES,
        OID_SUBJECT_ALT_NAME,
        OID_SUBJECT_KEY_IDENTIFIER,
        OID_AUTHORITY_KEY_IDENTIFIER,
    }
)

_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.2.840.10045.4.3.2": hashes.SHA256,  # ecdsa-with-SHA256, the SMKI algorithm
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class ValidationTime:
    """When to check validity: ``ValidationTime.at(t)`` or ``ValidationTime.disapplied()``."""

    moment: datetime | None

    @classmethod
    def at(cls, when: datetime) -> ValidationTime:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("validation time must be timezone-aware")
        return cls(when)

    @classmethod
    def disapplied(cls) -> ValidationTime:
        """Time checks off, as GBCS ``ApplyTimeBasedCPVChecks`` = disapply(1) asks."""
        return cls(None)

    @property
    def applies(self) -> bool:
        return self.moment is not None


@dataclass(frozen=True, slots=True)
class LeafExpectation:
    """What the caller requires of the leaf; ``None`` fields are not checked."""

    role: RemotePartyRole | None = None
    key_usage: KeyUsage | None = None
    entity: Eui64 | None = None  # x500UniqueIdentifier of an organisation certificate
    device: Eui64 | None = None  # hardwareModuleName of a device certificate


@dataclass(frozen=True, slots=True)
class ValidatedPath:
    """A path that passed: the leaf, the intermediates used, and the anchor it ends at."""

    leaf: SmkiCertificate
    intermediates: tuple[SmkiCertificate, ...]
    anchor: SmkiCertificate

    @property
    def certificates(self) -> tuple[SmkiCertificate, ...]:
        return (self.leaf, *self.intermediates, self.anchor)


def validate_path(
    leaf: SmkiCertificate,
    *,
    anchors: Iterable[SmkiCertificate],
    time: ValidationTime,
    policies: Iterable[str],
    path: Sequence[SmkiCertificate] = (),
    expect: LeafExpectation | None = None,
) -> ValidatedPath:
    """Validates ``leaf`` up ``path`` to one of ``anchors``; raises on the first failure."""
    anchor_list = tuple(anchors)
    accepted = frozenset(policies)
    check_leaf(leaf, expect or LeafExpectation())

    chain: list[SmkiCertificate] = [leaf]
    remaining = list(path)
    while True:
        current = chain[-1]
        depth = len(chain) - 1
        _check_own_properties(current, depth, time, accepted)
        candidates = [a for a in anchor_list if _names_issuer(a, current)]
        if candidates:
            anchor = _verify_by_any(current, depth, candidates)
            _check_issuer(anchor, depth + 1, intermediates_below=len(chain) - 1)
            return ValidatedPath(leaf, tuple(chain[1:]), anchor)
        if not remaining:
            raise PathValidationError(
                PathValidationFailure.UNTRUSTED_ROOT,
                f"no trust anchor named {current.issuer}",
                depth=depth,
                serial=current.serial,
            )
        issuer = remaining.pop(0)
        if not _names_issuer(issuer, current):
            raise PathValidationError(
                PathValidationFailure.WRONG_ISSUER,
                f"issued by {current.issuer}, next in path is {issuer.subject}",
                depth=depth,
                serial=current.serial,
            )
        _check_issuer(issuer, depth + 1, intermediates_below=len(chain) - 1)
        verify_signature(current, issuer, depth=depth)
        chain.append(issuer)


def check_leaf(leaf: SmkiCertificate, expect: LeafExpectation) -> None:
    """The caller's expectations of the end-entity certificate (role, usage, identity)."""

    def fail(reason: PathValidationFailure, detail: str) -> PathValidationError:
        return PathValidationError(reason, detail, depth=0, serial=leaf.serial)

    if expect.role is not None and leaf.role is not expect.role:
        raise fail(PathValidationFailure.WRONG_ROLE, f"{leaf.role!r}, expected {expect.role!r}")
    if expect.key_usage is not None and leaf.key_usage is not expect.key_usage:
        usages = sorted(u.value for u in leaf.key_usages)
        raise fail(
            PathValidationFailure.WRONG_KEY_USAGE, f"{usages}, expected {expect.key_usage.value}"
        )
    if expect.entity is not None and leaf.entity_eui != expect.entity:
        raise fail(
            PathValidationFailure.WRONG_ENTITY, f"{leaf.entity_eui}, expected {expect.entity}"
        )
    if expect.device is not None and leaf.device_eui != expect.device:
        raise fail(
            PathValidationFailure.WRONG_ENTITY, f"{leaf.device_eui}, expected {expect.device}"
        )


def verify_signature(subject: SmkiCertificate, issuer: SmkiCertificate, *, depth: int = 0) -> None:
    """Checks that ``issuer``'s key signed ``subject``'s TBSCertificate; raises if not."""
    algorithm = _SIGNATURE_HASHES.get(subject.signature_algorithm)
    if algorithm is None:
        raise PathValidationError(
            PathValidationFailure.UNSUPPORTED_ALGORITHM,
            subject.signature_algorithm,
            depth=depth,
            serial=subject.serial,
        )
    try:
        issuer.public_key.verify(subject.signature, subject.tbs_der, ec.ECDSA(algorithm()))
    except InvalidSignature:
        raise PathValidationError(
            PathValidationFailure.BAD_SIGNATURE,
            f"not signed by the key of {issuer.subject} (serial {issuer.serial_hex})",
            depth=depth,
            serial=subject.serial,
        ) from None


def _names_issuer(candidate: SmkiCertificate, child: SmkiCertificate) -> bool:
    """Name chaining (any string type) and, where both are present, AKI = SKI."""
    if not candidate.subject.matches(child.issuer):
        return False
    aki, ski = child.authority_key_identifier, candidate.subject_key_identifier
    return aki is None or ski is None or aki == ski


def _verify_by_any(
    current: SmkiCertificate, depth: int, anchors: list[SmkiCertificate]
) -> SmkiCertificate:
    """The anchor whose key signed ``current``; several may share a name (re-keyed CAs)."""
    failure: PathValidationError | None = None
    for anchor in anchors:
        try:
            verify_signature(current, anchor, depth=depth)
        except PathValidationError as exc:
            failure = exc
            continue
        return anchor
    assert failure is not None  # anchors is never empty here
    raise failure


def _check_own_properties(
    cert: SmkiCertificate, depth: int, time: ValidationTime, accepted: frozenset[str]
) -> None:
    def fail(reason: PathValidationFailure, detail: str) -> PathValidationError:
        return PathValidationError(reason, detail, depth=depth, serial=cert.serial)

    for ext in cert.extensions:
        if ext.critical and ext.oid not in KNOWN_EXTENSIONS:
            raise fail(PathValidationFailure.UNKNOWN_CRITICAL_EXTENSION, ext.oid)
    if not accepted.intersection(cert.policies):
        raise fail(PathValidationFailure.MISSING_POLICY, f"policies {list(cert.policies)}")
    if time.moment is not None:
        if time.moment < cert.not_before:
            raise fail(PathValidationFailure.NOT_YET_VALID, f"not before {cert.not_before}")
        if time.moment > cert.not_after:
            raise fail(PathValidationFailure.EXPIRED, f"not after {cert.not_after}")


def _check_issuer(issuer: SmkiCertificate, depth: int, *, intermediates_below: int) -> None:
    """RFC 5280 §6.1.4 (k), (l), (n): a CA with keyCertSign, within its pathLenConstraint."""
    if not issuer.is_ca or not issuer.can_sign_certificates:
        raise PathValidationError(
            PathValidationFailure.NOT_A_CA,
            f"{issuer.subject} (CA={issuer.is_ca}, keyCertSign={issuer.can_sign_certificates})",
            depth=depth,
            serial=issuer.serial,
        )
    if issuer.path_length is not None and intermediates_below > issuer.path_length:
        raise PathValidationError(
            PathValidationFailure.PATH_TOO_LONG,
            f"pathLen {issuer.path_length}, {intermediates_below} CA certificates below",
            depth=depth,
            serial=issuer.serial,
        )
