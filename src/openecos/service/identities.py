"""The DCC's keys and trust as the service uses them, resolved once at start-up.

Theory of operation. The service signs with four kinds of key, all through
:mod:`openecos.keys` handles (software or PKCS#11; the private keys never
reach this code): the DCC's XML-signing key (DUIS responses and alerts), the
TCoS and ECoS Parties' transitionalCoS keys (CS02b 0x0107) and the Access
Control Broker's key-agreement key (the command MAC). :class:`DccKeyNames`
names them as entries of a ``KeyStore``; :func:`resolve_service_keys` looks
them up and fails at start-up, not at the first request, if one is missing.
Keys may live in two stores at once: a PKCS#11 token for the keys it holds
(typically the TCoS and ECoS signing keys and the ACB key-agreement key) and
a software store for the rest; a name found in both is refused, so a
software copy can never be used in place of a token key by accident.
:attr:`ServiceKeys.custody` says where each key was found.

:class:`ServiceTrust` is what incoming signatures are judged against: the
SMKI trust anchors, the intermediate (organisation CA) certificates and the
accepted certificate policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from openecos.cos.routing import CosParties, CosParty
from openecos.duis import SigningIdentity
from openecos.eui import Eui64
from openecos.keys import AmbiguousKey, KeyHandle, KeyNotFound, KeyStore, Pkcs11KeyStore
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
    party_signers: Mapping[str, KeyHandle] = field(default_factory=dict)
    """The CoS Parties' signing keys by entry name, resolved at start-up."""
    custody: Mapping[str, str] = field(default_factory=dict)
    """Where each key was found: ``pkcs11`` or ``software``, by entry name."""

    def signer_of(self, party: CosParty) -> KeyHandle:
        handle = self.party_signers.get(party.signing_key)
        return handle if handle is not None else self.keystore.key(party.signing_key)


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


def _lookup(name: str, keystore: KeyStore, token: KeyStore | None) -> tuple[KeyHandle, str]:
    """``name`` from the token if it holds it, else from ``keystore``; never from both."""
    in_token = token is not None and name in token
    if in_token and token is not keystore and name in keystore:
        raise AmbiguousKey(f"entry {name!r} (in the PKCS#11 token and in software)", (name,))
    store = token if in_token and token is not None else keystore
    kind = "pkcs11" if isinstance(store, Pkcs11KeyStore) else "software"
    return store.key(name), kind


def resolve_service_keys(
    keystore: KeyStore, names: DccKeyNames, *, token: KeyStore | None = None
) -> ServiceKeys:
    """Looks every key up now; raises ``KeyNotFound`` naming the first one missing.

    With ``token``, each key the token holds comes from it and the others from
    ``keystore``; a name in both raises ``AmbiguousKey``.
    """
    custody: dict[str, str] = {}
    handles: dict[str, KeyHandle] = {}
    for name in (names.xml_signing, names.tcos_ds, names.ecos_ds, names.acb_ka):
        handles[name], custody[name] = _lookup(name, keystore, token)
    xml = handles[names.xml_signing]
    certificate = xml.certificate_der
    if certificate is None:
        raise KeyNotFound(f"{names.xml_signing} (no certificate)")
    return ServiceKeys(
        keystore=keystore,
        dcc_signing=SigningIdentity.for_certificate(xml, certificate),
        acb_key_agreement=handles[names.acb_ka],
        parties=CosParties(
            tcos=CosParty("TCoS", names.tcos_party, names.tcos_ds),
            ecos=CosParty("ECoS", names.ecos_party, names.ecos_ds),
        ),
        party_signers=MappingProxyType({n: handles[n] for n in (names.tcos_ds, names.ecos_ds)}),
        custody=MappingProxyType(custody),
    )
