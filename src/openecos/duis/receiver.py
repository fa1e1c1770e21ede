"""The receiver pipeline for SRV 6.23: bytes in, a checked typed request out.

Theory of operation (docs/duis-xmldsig-smki.md §6): size cap and hardened
parse → root is ``sr:Request`` → DUIS Schema V5.4 → signature in the DUIS
profile, certificate found through the caller's resolver → header and body
checks the XSD does not make. The signature is checked before any business
content is believed; the body is read from the same tree that was verified,
so what the service acts on is what was signed (§4.5).

What this does not do, because it needs state or a clock: the counter rule
(:func:`openecos.duis.request_id.check_counter_increases`, given the last
value from the store), the signer binding (:mod:`openecos.duis.binding`,
given the time and trust anchors), and the registration-data checks (cos).
Every failure is a :class:`~openecos.duis.errors.DuisError` whose
``response_code`` is the acknowledgement to send.
"""

from __future__ import annotations

from dataclasses import dataclass

from openecos.duis.codes import ALLOWED_COMMAND_VARIANTS_6_23
from openecos.duis.document import DEFAULT_MAX_SIZE, NS_SR, DuisSchema, parse_document
from openecos.duis.errors import DuisFailure, RequestRefused
from openecos.duis.request import ServiceRequest, read_update_security_credentials_cos
from openecos.duis.xmldsig import CertificateResolver, VerifiedSignature, verify_signature


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """A 6.23 request whose bytes parsed, validated and verified."""

    request: ServiceRequest
    signature: VerifiedSignature

    @property
    def signed_bytes(self) -> bytes:
        """The canonical signed content (inclusive C14N without the Signature): keep this."""
        return self.signature.signed_bytes


def receive_update_security_credentials_cos(
    data: bytes,
    *,
    schema: DuisSchema,
    resolve_certificate: CertificateResolver,
    max_size: int = DEFAULT_MAX_SIZE,
    allowed_command_variants: frozenset[int] = ALLOWED_COMMAND_VARIANTS_6_23,
) -> ReceivedRequest:
    """Parses, validates and verifies a signed SRV 6.23 request; raises ``DuisError``."""
    root = parse_document(data, max_size=max_size)
    if root.tag != f"{{{NS_SR}}}Request":
        raise RequestRefused(
            f"expected sr:Request, got {root.tag}", failure=DuisFailure.UNEXPECTED_MESSAGE
        )
    schema.validate(root)
    signature = verify_signature(root, resolve_certificate)
    request = read_update_security_credentials_cos(root, allowed_command_variants)
    return ReceivedRequest(request, signature)
