"""The DCC's keys and trust as the service uses them, resolved once at start-up.

Theory of operation. The service signs with four kinds of key, all through
:mod:`openecos.keys` handles (software or PKCS#11; the private keys never
reach this code): the DCC's XML-signing key (DUIS responses and alerts), the
TCoS and ECoS Parties' transitionalCoS keys (CS02b 0x0107) and the Access
Control Broker's key-agreement key (the command MAC). :class:`DccKeyNames`
names them as entries of a ``KeyStore``; :func:`resolve_service_keys` looks
them up and fails at start-up, not at the first request, if one is missing.

:class:`ServiceTrust` is what incoming signatures are judged against: the
SMKI trust anchors, the intermediate (organisation CA) certificates and the
accepted certificate policies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openecos.cos.routing import CosParties, CosParty
from openecos.duis import SigningIdentity
from openecos.eui import Eui64
from openecos.keys import KeyHandle, KeyStore
from openecos.smki import SmkiCertificate, load_test_pki
from openecos.smki.sandbox import ACCESS_CONTROL_BROKER, ECOS_PARTY, TCOS_PARTY


@dataclass(frozen=True, slots=True)
class DccKeyNames:
    """The DCC-side entities and the key-store entries of their keys (sandbox defaults)."""

    access_control_broker: Eui64 = ACCESS_CONTROL_BROKER
    tcos_party: Eui64 = TCOS_PARTY
    ecos_party: Eui64 = ECOS_PARTY
    acb_ka: str = "acb-ka"
    tcos_ds: str = "tcos-ds"
    ecos_ds: str = "ecos-ds"
    xml_signing: str = "dcc-xml-sign"


@dataclass(frozen=True, slots=True)
class ServiceKeys:
    """Key handles the service signs and MACs with."""

    keystore: KeyStore
    dcc_signing: SigningIdentity
    acb_key_agreement: KeyHandle
    parties: CosParties

    def signer_of(self, party: CosParty) -> KeyHandle:
        return self.keystore.key(party.signing_key)


@dataclass(frozen=True, slots=True)
class ServiceTrust:
    """Trust anchors, intermediates and policies for judging SMKI certificates."""

    anchors: tuple[SmkiCertificate, ...]
    intermediates: tuple[SmkiCertificate, ...]
    policies: frozenset[str]

    @classmethod
    def from_test_pki(cls, directory: Path) -> ServiceTrust:
        pki = load_test_pki(directory)
        return cls(pki.anchors, pki.organisation_path, pki.policies)


def resolve_service_keys(keystore: KeyStore, names: DccKeyNames) -> ServiceKeys:
    """Looks every key up now; raises ``KeyNotFound`` naming the first one missing."""
    xml = keystore.key(names.xml_signing)
    certificate = xml.certificate_der
    if certificate is None:
        from openecos.keys import KeyNotFound

        raise KeyNotFound(f"{names.xml_signing} (no certificate)")
    for name in (names.tcos_ds, names.ecos_ds):
        keystore.key(name)
    return ServiceKeys(
        keystore=keystore,
        dcc_signing=SigningIdentity.for_certificate(xml, certificate),
        acb_key_agreement=keystore.key(names.acb_ka),
        parties=CosParties(
            tcos=CosParty("TCoS", names.tcos_party, names.tcos_ds),
            ecos=CosParty("ECoS", names.ecos_party, names.ecos_ds),
        ),
    )
