"""What each CS02b mode lets a command do, and how a replacement certificate is judged.

Theory of operation. Two pure tables and one judgement, used by
:mod:`openecos.device.machine`:

* :data:`MODE_RULES`: for each credentialsReplacementMode, the cell whose
  anchor must have signed the command (named in [2]) and the cells it may
  replace. docs/gbcs-cs02b.md §8.4 [G] gives 0x0107 (supplier DS/KA/KA top-up,
  signed from the transitionalCoS DS cell) and 0x0106 (transitionalCoS DS
  only); the other modes follow their names (§4.1) and are this project's
  reading, also [G]. ACB-by-ACB (mode 4) is unsigned and authenticated by its
  MAC alone (§2.1, the 8.5 vector); Recovery (mode 8) is sent without a MAC
  and may replace any cell but the root; contingency (mode 9) and the root
  replacements (0x0100/0x0101) are not simulated.
* :func:`judge_replacement`: a replacement certificate must be readable, be
  validated to the meter's root anchor through the command's
  certificationPath (time checks at the given time unless [1] = disapply,
  §8.4), carry one of the accepted policies, and have the role and key usage
  of its target cell. The failure becomes the per-cell status the meter
  reports: a path that does not reach the root is ``noTrustAnchor`` (the
  6.15.1 ERROR vector reports 10 for a certificate from a foreign CA, §4.1);
  anything else wrong with the certificate is ``badCertificate``.

Every meter of a fleet is sent the same few certificates, and checking a path
costs two ECDSA verifications a link. So the time-independent part of the
verdict (signatures, names, policies, role, key usage; ``validate_path`` with
time checks disapplied) is remembered in the profile's cache, keyed by the
exact certificates, root and cell; the validity periods of the leaf and the
intermediates are then checked against the command's time on every use. One
consequence: a certificate that is both expired and wrongly signed reports
``noTrustAnchor`` where a single walk would have met the expiry first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openecos.device.cells import (
    ACB_DS_CELL,
    ACB_KA_CELL,
    METER_CELLS,
    NETWORK_OPERATOR_DS_CELL,
    NETWORK_OPERATOR_KA_CELL,
    RECOVERY_CELL,
    ROOT_CELL,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    WAN_PROVIDER_CELL,
    AnchorCertificate,
    CertificateCache,
)
from openecos.device.state import PlannedReplacement
from openecos.gbcs.codes import CredentialsReplacementMode, StatusCode
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier, TrustAnchorReplacement
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.errors import CertificateError, PathValidationError, PathValidationFailure
from openecos.smki.path import LeafExpectation, ValidationTime, validate_path

Mode = CredentialsReplacementMode


@dataclass(frozen=True, slots=True)
class ModeRule:
    """What one credentialsReplacementMode authorises."""

    authorising_cell: TrustAnchorCellIdentifier | None
    """The cell [2] must name and whose anchor signed; ``None``: unsigned, MAC only."""
    targets: frozenset[TrustAnchorCellIdentifier]
    mac_required: bool = True


SUPPLIER_CELLS = frozenset({SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, SUPPLIER_KA_TOP_UP_CELL})

MODE_RULES: dict[CredentialsReplacementMode, ModeRule] = {
    Mode.SUPPLIER_BY_SUPPLIER: ModeRule(SUPPLIER_DS_CELL, SUPPLIER_CELLS),
    Mode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: ModeRule(
        NETWORK_OPERATOR_DS_CELL, frozenset({NETWORK_OPERATOR_DS_CELL, NETWORK_OPERATOR_KA_CELL})
    ),
    Mode.ACCESS_CONTROL_BROKER_BY_ACB: ModeRule(None, frozenset({ACB_DS_CELL, ACB_KA_CELL})),
    Mode.WAN_PROVIDER_BY_WAN_PROVIDER: ModeRule(WAN_PROVIDER_CELL, frozenset({WAN_PROVIDER_CELL})),
    # §8.4 [G]: 0x0106 may only replace the transitionalCoS DS anchor ...
    Mode.TRANS_COS_BY_TRANS_COS: ModeRule(
        TRANSITIONAL_COS_CELL, frozenset({TRANSITIONAL_COS_CELL})
    ),
    # ... and 0x0107 only the supplier's three cells, both signed from that anchor.
    Mode.SUPPLIER_BY_TRANS_COS: ModeRule(TRANSITIONAL_COS_CELL, SUPPLIER_CELLS),
    Mode.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: ModeRule(
        RECOVERY_CELL, frozenset(METER_CELLS) - {ROOT_CELL}, mac_required=False
    ),
}

_NO_TRUST_ANCHOR = frozenset(
    {
        PathValidationFailure.UNTRUSTED_ROOT,
        PathValidationFailure.WRONG_ISSUER,
        PathValidationFailure.BAD_SIGNATURE,
        PathValidationFailure.NOT_A_CA,
        PathValidationFailure.PATH_TOO_LONG,
    }
)


def read_certification_path(
    certificates: Sequence[bytes], cache: CertificateCache
) -> tuple[SmkiCertificate, ...] | None:
    """The command's certificationPath parsed, or ``None`` if any entry is unreadable."""
    try:
        return tuple(cache.certificate(der).certificate for der in certificates)
    except CertificateError:
        return None


def judge_replacement(
    replacement: TrustAnchorReplacement,
    *,
    root: AnchorCertificate | None,
    path: tuple[SmkiCertificate, ...] | None,
    time: ValidationTime,
    policies: frozenset[str],
    cache: CertificateCache,
) -> PlannedReplacement:
    """The per-cell verdict on one replacement (see the module docstring)."""
    cell = replacement.target_trust_anchor_cell
    if root is None:
        return PlannedReplacement(cell, StatusCode.NO_TRUST_ANCHOR, None)
    if path is None:
        return PlannedReplacement(cell, StatusCode.BAD_CERTIFICATE, None)
    try:
        anchor = cache.certificate(replacement.replacement_certificate)
    except CertificateError:
        return PlannedReplacement(cell, StatusCode.BAD_CERTIFICATE, None)
    key = (anchor.der, tuple(c.der for c in path), root.der, cell, policies)
    verdict = cache.verdict(key)
    if verdict is None:
        verdict = _verdict(anchor.certificate, root.certificate, path, cell, policies)
        cache.remember_verdict(key, verdict)
    if isinstance(verdict, StatusCode):
        return PlannedReplacement(cell, verdict, None)
    assert isinstance(verdict, tuple)
    moment = time.moment
    if moment is not None:
        # §8.4: time-based checks unless [1] = disapply; the anchor itself is trusted as given.
        for certificate in verdict:
            if not certificate.not_before <= moment <= certificate.not_after:
                return PlannedReplacement(cell, StatusCode.BAD_CERTIFICATE, None)
    return PlannedReplacement(cell, StatusCode.SUCCESS, anchor)


def _verdict(
    leaf: SmkiCertificate,
    root: SmkiCertificate,
    path: tuple[SmkiCertificate, ...],
    cell: TrustAnchorCellIdentifier,
    policies: frozenset[str],
) -> StatusCode | tuple[SmkiCertificate, ...]:
    """A failure status, or the certificates whose validity periods must contain the time."""
    try:
        validated = validate_path(
            leaf,
            anchors=(root,),
            time=ValidationTime.disapplied(),
            policies=policies,
            path=path,
            # The certificate must be for the target cell's role and key usage (§8.4).
            expect=LeafExpectation(role=cell.remote_party_role, key_usage=cell.key_usage),
        )
    except PathValidationError as failure:
        if failure.reason in _NO_TRUST_ANCHOR:
            return StatusCode.NO_TRUST_ANCHOR
        return StatusCode.BAD_CERTIFICATE
    return (validated.leaf, *validated.intermediates)
