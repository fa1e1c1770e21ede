"""Signer binding: may the certificate that signed a DUIS message sign it?

Theory of operation: XMLDSig verification (:mod:`openecos.duis.xmldsig`)
only proves that the key behind (issuer, serial) signed the document. The
DCC Boxed tool stops there (docs/duis-xmldsig-smki.md §0 fact 4, §2.5); the
receiver must also check (§6 step 6):

- the certificate's entity EUI (x500UniqueIdentifier) equals the RequestID's
  Business Originator ID (the party the message claims to come from);
- its role (OU) is an XML-signing role: 0x87 for users, 0x89 for the DCC;
- its key usage is digitalSignature only;
- it is valid at the given time;
- it chains, through the intermediates given, to a trust anchor, under an
  accepted policy (path validation is :func:`openecos.smki.validate_path`).

The 2018 DCC Boxed xml-sign certificates name ``CN=Z1,OU=07`` as issuer but
were not signed by the Z1 key (§0 fact 6, §3.2), so no chain can pass for
them. A deployment that must interoperate with DCC Boxed pins such leaves
(``pinned``: certificate DERs trusted as themselves, §3.2 option (a)); for a
pinned leaf every check but the chain still applies.

Pure: certificates, EUI and time in; the parsed certificate out, or
:class:`~openecos.duis.errors.SignerNotBound` (response code E1).

Speed: a user signs every request with the same certificate, so the parsed
leaf and the time-independent part of its path (names, policies, CA flags,
signatures) are remembered by DER, and only the validity periods are checked
at each call. Only successes are remembered: a refusal is worked out afresh.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from functools import lru_cache

from openecos.duis.errors import SignerNotBound
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki import (
    CertificateError,
    LeafExpectation,
    PathValidationError,
    SmkiCertificate,
    ValidatedPath,
    ValidationTime,
    check_leaf,
    validate_path,
)

#: Roles whose certificates sign service users' DUIS requests (DCC Boxed "xml-sign").
USER_XML_SIGNING_ROLES = frozenset({RemotePartyRole.XML_SIGN})
#: Roles whose certificates sign the DCC's DUIS responses and alerts ("dsp-xml-sign").
DCC_XML_SIGNING_ROLES = frozenset({RemotePartyRole.DSP_XML_SIGN})


def check_signer_binding(
    certificate_der: bytes,
    originator: Eui64,
    *,
    at: datetime,
    anchors: Iterable[SmkiCertificate],
    policies: Iterable[str],
    roles: Collection[RemotePartyRole] = USER_XML_SIGNING_ROLES,
    intermediates: Sequence[SmkiCertificate] = (),
    pinned: Collection[bytes] = (),
) -> SmkiCertificate:
    """Checks the signing certificate may sign for ``originator`` at ``at``; returns it parsed.

    ``certificate_der`` is :attr:`VerifiedSignature.certificate_der`;
    ``originator`` is the RequestID's Business Originator ID (for DCC
    messages, the DCC's own EUI). Raises :class:`SignerNotBound`.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the binding time must be timezone-aware")
    try:
        leaf = _parsed(certificate_der)
    except CertificateError as exc:
        raise SignerNotBound(f"the signing certificate cannot be read: {exc}") from exc

    # Identity first: the most useful answer to a misconfigured sender.
    if leaf.entity_eui != originator:
        raise SignerNotBound(
            f"signing certificate belongs to {leaf.entity_eui}, the RequestID originator is "
            f"{originator}"
        )
    if leaf.role not in roles:
        allowed = ", ".join(f"0x{r.value:02X}" for r in sorted(roles))
        shown = "none" if leaf.role is None else f"0x{leaf.role.value:02X}"
        raise SignerNotBound(
            f"signing certificate role {shown} is not an XML-signing role ({allowed})"
        )
    # key_usage is DIGITAL_SIGNATURE only when the keyUsage bits are exactly {digitalSignature}.
    expectation = LeafExpectation(key_usage=KeyUsage.DIGITAL_SIGNATURE, entity=originator)
    try:
        check_leaf(leaf, expectation)
    except PathValidationError as exc:
        raise SignerNotBound(f"signing certificate: {exc}") from exc
    if not leaf.is_valid_at(at):
        raise SignerNotBound(
            f"signing certificate is not valid at {at.isoformat()} "
            f"({leaf.not_before.isoformat()} .. {leaf.not_after.isoformat()})"
        )
    if certificate_der in pinned:
        return leaf
    try:
        validated = _time_independent_path(
            leaf, tuple(anchors), intermediates, policies, expectation
        )
    except PathValidationError as exc:
        raise SignerNotBound(
            f"signing certificate does not chain to a trust anchor: {exc}"
        ) from exc
    # The time checks validate_path would have made on the leaf and each intermediate.
    for certificate in validated.intermediates:
        if not certificate.is_valid_at(at):
            raise SignerNotBound(
                "signing certificate does not chain to a trust anchor: intermediate "
                f"{certificate.subject} is not valid at {at.isoformat()}"
            )
    return leaf


@lru_cache(maxsize=1024)
def _parsed(certificate_der: bytes) -> SmkiCertificate:
    return SmkiCertificate.from_der(certificate_der)


_PathKey = tuple[bytes, tuple[bytes, ...], tuple[bytes, ...], frozenset[str], LeafExpectation]
_PATHS: dict[_PathKey, ValidatedPath] = {}
_PATHS_MAX = 4096


def _time_independent_path(
    leaf: SmkiCertificate,
    anchors: tuple[SmkiCertificate, ...],
    intermediates: Sequence[SmkiCertificate],
    policies: Iterable[str],
    expectation: LeafExpectation,
) -> ValidatedPath:
    """``validate_path`` with the time checks disapplied, remembered by the DERs involved."""
    accepted = frozenset(policies)
    key = (
        leaf.der,
        tuple(a.der for a in anchors),
        tuple(i.der for i in intermediates),
        accepted,
        expectation,
    )
    found = _PATHS.get(key)
    if found is None:
        found = validate_path(
            leaf,
            anchors=anchors,
            time=ValidationTime.disapplied(),
            policies=accepted,
            path=intermediates,
            expect=expectation,
        )
        if len(_PATHS) >= _PATHS_MAX:  # bounded: start again rather than grow
            _PATHS.clear()
        _PATHS[key] = found
    return found
