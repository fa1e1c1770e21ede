"""The replacement certificates of a 6.23: which cell each goes to, and whether it may.

Theory of operation. A 6.23 carries the new supplier's digital-signing
certificate and, optionally, its key-agreement and key-agreement top-up
certificates (docs/duis-xmldsig-smki.md §1.2). Each goes to one supplier
trust-anchor cell on the meter, always in the order DS, KA, KA top-up
(docs/gbcs-cs02b.md §9):

==========================  ====================================
DUIS element                GBCS target cell
==========================  ====================================
DigitalSigningCertificate   (supplier, digitalSignature)
KeyAgreementCertificate     (supplier, keyAgreement)
KeyAgreementTopUpCertificate (supplier, keyAgreement, prePaymentTopUp)
==========================  ====================================

:func:`check_replacements` makes the certificate checks of a 6.23 in three
stages, cheapest first (docs/duis-xmldsig-smki.md §6 step 7): each
certificate is readable, is a supplier certificate (OU 02) with the key usage
of its cell, and all belong to one entity; that entity is the requester
(configurable, §1.5: the DUIS templates violate it); each chains through the
request's certification-path certificates to a trust anchor, with the time
checks only when ``ApplyTimeBasedCPVChecks`` is true. It raises
:class:`~openecos.cos.errors.CosRejected` naming the stage's check. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from openecos.cos.errors import CosRejected
from openecos.duis.request import ReplacementCertificatesCoS
from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier, TrustAnchorReplacement
from openecos.smki import (
    CertificateError,
    LeafExpectation,
    PathValidationError,
    PathValidationFailure,
    SmkiCertificate,
    ValidationTime,
    check_leaf,
    validate_path,
)

#: The supplier cells a 6.23 writes, in the order GBCS carries them (docs/gbcs-cs02b.md §9).
SUPPLIER_DS_CELL = TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.DIGITAL_SIGNATURE)
SUPPLIER_KA_CELL = TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT)
SUPPLIER_KA_TOP_UP_CELL = TrustAnchorCellIdentifier(
    RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP
)

_TIME_FAILURES = frozenset({PathValidationFailure.EXPIRED, PathValidationFailure.NOT_YET_VALID})

# The checks are named by the caller's enum; this module takes a factory so the
# code table stays in one place (openecos.cos.checks.CHECK_RESPONSE_CODES).
Reject = Callable[[str, str], CosRejected]


@dataclass(frozen=True, slots=True)
class CheckedReplacement:
    """A replacement certificate that passed: its DER (verbatim), its cell, its identity."""

    certificate: bytes
    cell: TrustAnchorCellIdentifier
    subject_eui: Eui64
    subject_key_identifier: bytes | None

    def to_gbcs(self) -> TrustAnchorReplacement:
        return TrustAnchorReplacement(self.certificate, self.cell)


def targets(
    replacements: ReplacementCertificatesCoS,
) -> tuple[tuple[bytes, TrustAnchorCellIdentifier], ...]:
    """The (certificate, cell) pairs of a 6.23 in GBCS order: DS, KA, KA top-up."""
    pairs = (
        (replacements.digital_signing, SUPPLIER_DS_CELL),
        (replacements.key_agreement, SUPPLIER_KA_CELL),
        (replacements.key_agreement_top_up, SUPPLIER_KA_TOP_UP_CELL),
    )
    return tuple((der, cell) for der, cell in pairs if der is not None)


def check_replacements(
    replacements: ReplacementCertificatesCoS,
    certification_path: Iterable[bytes],
    *,
    requester: Eui64,
    require_certificates_of_requester: bool,
    apply_time_based_cpv_checks: bool,
    now: datetime,
    anchors: Iterable[SmkiCertificate],
    policies: Iterable[str],
    reject: Reject,
) -> tuple[CheckedReplacement, ...]:
    """Checks every replacement certificate; returns them with their cells, in GBCS order.

    ``reject(stage, detail)`` builds the rejection for a stage: ``"certificate"``,
    ``"owner"``, ``"path"`` or ``"validity"``.
    """
    parsed: list[tuple[SmkiCertificate, bytes, TrustAnchorCellIdentifier]] = []
    for der, cell in targets(replacements):
        name = _cell_name(cell)
        try:
            certificate = SmkiCertificate.from_der(der)
            # SMKI: supplier certificates carry OU 02 and exactly the cell's key usage.
            check_leaf(
                certificate, LeafExpectation(role=cell.remote_party_role, key_usage=cell.key_usage)
            )
        except (CertificateError, PathValidationError) as exc:
            raise reject("certificate", f"{name} certificate: {exc}") from exc
        parsed.append((certificate, der, cell))

    owners = {c.entity_eui for c, _, _ in parsed}
    if None in owners or len(owners) != 1:
        shown = ", ".join(sorted(str(o) for o in owners))
        raise reject("certificate", f"replacement certificates must name one entity, got {shown}")
    owner = parsed[0][0].entity_eui
    assert owner is not None  # the check above
    if require_certificates_of_requester and owner != requester:
        raise reject("owner", f"replacement certificates belong to {owner}, not to {requester}")

    try:
        path = tuple(SmkiCertificate.from_der(der) for der in certification_path)
    except CertificateError as exc:
        raise reject("path", f"certification path certificate: {exc}") from exc
    # GBCS applyTimeBasedCPVChecks: apply at the DCC's current time, or not at all.
    time = ValidationTime.at(now) if apply_time_based_cpv_checks else ValidationTime.disapplied()
    anchor_list = tuple(anchors)
    policy_set = frozenset(policies)
    for certificate, _, cell in parsed:
        try:
            validate_path(
                certificate, anchors=anchor_list, time=time, policies=policy_set, path=path
            )
        except PathValidationError as exc:
            stage = "validity" if exc.reason in _TIME_FAILURES else "path"
            raise reject(stage, f"{_cell_name(cell)} certificate: {exc}") from exc
    return tuple(
        CheckedReplacement(der, cell, owner, certificate.subject_key_identifier)
        for certificate, der, cell in parsed
    )


def _cell_name(cell: TrustAnchorCellIdentifier) -> str:
    if cell == SUPPLIER_DS_CELL:
        return "digital-signing"
    if cell == SUPPLIER_KA_CELL:
        return "key-agreement"
    return "key-agreement top-up"
