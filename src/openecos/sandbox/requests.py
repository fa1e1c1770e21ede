"""Service Request 6.23 for a sandbox meter and a gaining supplier, as a supplier's tool makes it.

Theory of operation: :func:`new_cos_request` looks the meter up in the
sandbox's store (its type and MPxN, as the DCC's inventory records them),
picks the gaining supplier's user ID for the meter's fuel (the user holding
the party's IS MPID for an ESME, GS for a GSME: for a split supplier these
are different user IDs with different certificates) and fills
``UpdateSecurityCredentialsCoS`` with that user's DS, KA and KA top-up
certificates and the organisation CA as the certification path, as the DUIS
templates do (ecos-domain.md §A2). :func:`signing_identity` gives that
user's XML-signing key from the sandbox key store. Nothing here decides
whether the request should succeed: a request for the current supplier, or
for an MPxN the supplier is not registered for, is built all the same, so
the service's checks can be exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openecos.duis import (
    SERVICE_REFERENCE_6_23,
    ReplacementCertificatesCoS,
    RequestHeader,
    RequestId,
    ServiceRequest,
    SigningIdentity,
    UpdateSecurityCredentialsCoS,
)
from openecos.eui import Eui64
from openecos.keys import KeyStoreError
from openecos.sandbox.errors import SandboxError
from openecos.sandbox.load import Sandbox
from openecos.sandbox.plan import SandboxParty, SandboxUser
from openecos.store import Device, DeviceType, NotFound, UserRole

_ROLE_FOR = {DeviceType.ESME: UserRole.IMPORT_SUPPLIER, DeviceType.GSME: UserRole.GAS_SUPPLIER}


@dataclass(frozen=True, slots=True)
class CosRequest:
    """A built 6.23 and what it was built from."""

    request: ServiceRequest
    device: Device
    party: SandboxParty
    user: SandboxUser
    mpid: str


def gaining_user(
    sandbox: Sandbox, supplier: str, device: Device
) -> tuple[SandboxParty, SandboxUser, str]:
    """The party, user ID and MPID that would gain ``device`` for ``supplier``."""
    role = _ROLE_FOR.get(device.device_type)
    if role is None:
        raise SandboxError(f"device {device.eui} is a {device.device_type.value}, not a meter")
    party = sandbox.party(supplier)
    named = sandbox.user(supplier)
    mpids = [m for m in party.mpids if m.role is role]
    if named is not None:
        mpids = [m for m in mpids if m.user_id == named.user_id]
    if not mpids:
        who = named.user_id.duis if named is not None else party.party_id
        raise SandboxError(
            f"{who} holds no {role.value} MPID: it cannot supply a {device.device_type.value}"
        )
    return party, party.user(mpids[0].user_id), mpids[0].mpid


def new_cos_request(
    sandbox: Sandbox,
    device: Eui64,
    supplier: str,
    *,
    counter: int,
    execution: datetime | None = None,
    floor_seq_number: int = 0,
    top_up_floor_seq_number: int | None = 0,
) -> CosRequest:
    """A 6.23 from ``supplier`` (party ID, user ID or MPID) for ``device``; see the module doc."""
    with sandbox.open_store() as store:
        try:
            record = store.devices.get(device)
        except NotFound:
            raise SandboxError(f"no device {device.duis} in this sandbox") from None
    if record.mpxn is None:
        raise SandboxError(f"device {device.duis} has no MPxN")
    party, user, mpid = gaining_user(sandbox, supplier, record)
    prefix = user.pki_prefix
    try:
        ds, ka, ka_top_up = (
            sandbox.pki.entry(f"{prefix}-{suffix}").certificate.der
            for suffix in ("ds", "ka", "ka-topup")
        )
    except KeyError as exc:
        raise SandboxError(f"the sandbox PKI has no certificate {exc.args[0]!r}") from None
    request = ServiceRequest(
        RequestHeader(
            request_id=RequestId(user.user_id, device, counter),
            command_variant=1,
            service_reference=SERVICE_REFERENCE_6_23,
            service_reference_variant=SERVICE_REFERENCE_6_23,
        ),
        UpdateSecurityCredentialsCoS(
            supplier_floor_seq_number=floor_seq_number,
            supplier_prepayment_top_up_floor_seq_number=top_up_floor_seq_number,
            replacement_certificates=ReplacementCertificatesCoS(ds, ka, ka_top_up),
            certification_path_certificates=(sandbox.pki.organisation_ca.certificate.der,),
            apply_time_based_cpv_checks=True,
            import_mpxn=record.mpxn,
            execution_date_time=execution,
        ),
    )
    return CosRequest(request, record, party, user, mpid)


def signing_identity(sandbox: Sandbox, user: SandboxUser) -> SigningIdentity:
    """The user's XML-signing key (role 0x87) from the sandbox key store."""
    try:
        handle = sandbox.keystore.key(user.xml_signing_key)
    except KeyStoreError as exc:
        raise SandboxError(f"no XML-signing key for {user.user_id.duis}: {exc}") from None
    certificate = handle.certificate_der
    if certificate is None:
        raise SandboxError(f"{user.xml_signing_key} has no certificate")
    return SigningIdentity.for_certificate(handle, certificate)
