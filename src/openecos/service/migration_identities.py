"""Who the migration engine is on the wire: the TCoS, ECoS and ACB entities and their keys.

The 0x0106 is signed by the TCoS Party's transitionalCoS DS key and carries
the ECoS Party's transitionalCoS DS certificate with its certification path
(docs/ecos-domain.md §C1); the CS02a read comes from the Access Control
Broker, MACed with its KA key. The engine uses the same key handles as the
change-of-supplier service (:class:`~openecos.service.identities.ServiceKeys`),
so a PKCS#11 token holds the TCoS key for both; certificates come from the
handles, or from the store's known certificates when a handle has none.
"""

from __future__ import annotations

from dataclasses import dataclass

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.keys import KeyHandle
from openecos.migration import AnchorIdentity, EcosCredential
from openecos.service.identities import DccKeyNames, ServiceKeys, ServiceTrust
from openecos.smki import SmkiCertificate
from openecos.store import NotFound, Store


@dataclass(frozen=True, slots=True)
class MigrationIdentities:
    """The parties, credentials and key handles the engine signs, MACs and checks with."""

    tcos: Eui64
    ecos: Eui64
    acb: Eui64
    credential: EcosCredential
    """The ECoS Party's transitionalCoS DS certificate and path (what the 0x0106 places)."""
    tcos_identity: AnchorIdentity
    tcos_signer: KeyHandle
    acb_key_agreement: KeyHandle

    @property
    def ecos_identity(self) -> AnchorIdentity:
        return self.credential.identity


def _certificate(handle: KeyHandle, store: Store, entity: Eui64) -> bytes:
    der = handle.certificate_der
    if der is not None:
        return der
    found = store.certificates.by_subject(
        entity, RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE
    )
    if not found:
        raise NotFound(f"no transitionalCoS DS certificate of {entity}")
    return found[0].der


def resolve_migration_identities(
    keys: ServiceKeys,
    trust: ServiceTrust,
    store: Store,
    names: DccKeyNames | None = None,
) -> MigrationIdentities:
    """Resolves everything now (fails at start-up, not at the first meter)."""
    names = names or DccKeyNames()
    tcos, ecos = keys.parties.tcos, keys.parties.ecos
    ecos_der = _certificate(keys.signer_of(ecos), store, ecos.entity_eui)
    tcos_signer = keys.signer_of(tcos)
    tcos_der = _certificate(tcos_signer, store, tcos.entity_eui)
    path = tuple(c.der for c in trust.intermediates)
    acb = names.access_control_broker
    acb_der = keys.acb_key_agreement.certificate_der
    if acb_der is not None:
        acb_eui = SmkiCertificate.from_der(acb_der).eui
        if acb_eui is not None:
            acb = acb_eui
    return MigrationIdentities(
        tcos=tcos.entity_eui,
        ecos=ecos.entity_eui,
        acb=acb,
        credential=EcosCredential.from_der(ecos_der, path),
        tcos_identity=AnchorIdentity.of(SmkiCertificate.from_der(tcos_der)),
        tcos_signer=tcos_signer,
        acb_key_agreement=keys.acb_key_agreement,
    )


__all__ = ["MigrationIdentities", "resolve_migration_identities"]
