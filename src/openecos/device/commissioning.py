"""Making meters: a state from chosen cells, and a meter commissioned for the sandbox.

Theory of operation. :func:`commission_meter` builds a
:class:`~openecos.device.state.MeterState` from a mapping of cells to
certificates, interning every certificate through the profile's cache so
meters share them. :func:`commission_sandbox_meter` fills the cells from a
``TestPki`` made by :func:`openecos.smki.sandbox_pki`: the PKI root in the root
cell, supplier A's three certificates, the network operator's two, the
ACB's two and the TCoS Party's transitionalCoS certificate. The device's own
DS and KA certificates are minted by the PKI's device CA for the public keys
of a :class:`~openecos.device.keys.DerivedDeviceKeys` source
(:func:`sandbox_device_certificates`), so the CoS side can MAC commands to the
meter while the meter's private keys stay out of its state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openecos.device.cells import (
    ACB_DS_CELL,
    ACB_KA_CELL,
    CELL_SLOTS,
    METER_CELLS,
    NETWORK_OPERATOR_DS_CELL,
    NETWORK_OPERATOR_KA_CELL,
    ROOT_CELL,
    SEQ_NUMBER_COUNT,
    SEQ_NUMBER_SLOTS,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TOP_UP_SEQ_SLOT,
    TRANSITIONAL_COS_CELL,
    AnchorCertificate,
    CertificateCache,
)
from openecos.device.keys import DerivedDeviceKeys
from openecos.device.state import MeterProfile, MeterState
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.extensions import X509KeyUsage
from openecos.smki.mint import mint_certificate
from openecos.smki.names import DistinguishedName
from openecos.smki.testpki import DEVICE_NOT_AFTER, TestPki


def commission_meter(
    device: Eui64,
    *,
    cells: Mapping[TrustAnchorCellIdentifier, bytes | SmkiCertificate],
    certificates: CertificateCache,
    seq_numbers: Mapping[RemotePartyRole, int] | None = None,
    top_up_seq_number: int = 0,
    alert_counter: int = 1,
) -> MeterState:
    """A meter whose cells hold ``cells`` (others empty) and whose seq numbers are given (else 0).

    Raises KeyError for a cell or a role the simulated meter does not have, and
    :class:`openecos.smki.CertificateError` for unreadable certificate bytes.
    """
    filled: list[AnchorCertificate | None] = [None] * len(METER_CELLS)
    for cell, certificate in cells.items():
        filled[CELL_SLOTS[cell]] = certificates.certificate(certificate)
    values = [0] * SEQ_NUMBER_COUNT
    for role, value in (seq_numbers or {}).items():
        values[SEQ_NUMBER_SLOTS[role]] = value
    values[TOP_UP_SEQ_SLOT] = top_up_seq_number
    return MeterState(
        device,
        certificates.cells(tuple(filled)),
        certificates.seq_numbers(tuple(values)),
        alert_counter,
    )


def sandbox_profile(pki: TestPki, *, seed: bytes = b"openecos sandbox meters") -> MeterProfile:
    """A profile for sandbox meters: derived device keys, the PKI's policies."""
    return MeterProfile(keys=DerivedDeviceKeys(seed), policies=pki.policies)


def sandbox_cells(
    pki: TestPki, *, supplier: str = "supplier-a", transitional_cos: str = "tcos-ds"
) -> dict[TrustAnchorCellIdentifier, SmkiCertificate]:
    """The cells of a sandbox meter, by ``SANDBOX_PARTIES`` entry name."""
    names = {
        SUPPLIER_DS_CELL: f"{supplier}-ds",
        SUPPLIER_KA_CELL: f"{supplier}-ka",
        SUPPLIER_KA_TOP_UP_CELL: f"{supplier}-ka-topup",
        NETWORK_OPERATOR_DS_CELL: "network-operator-ds",
        NETWORK_OPERATOR_KA_CELL: "network-operator-ka",
        ACB_DS_CELL: "acb-ds",
        ACB_KA_CELL: "acb-ka",
        TRANSITIONAL_COS_CELL: transitional_cos,
    }
    cells = {cell: pki.entry(name).certificate for cell, name in names.items()}
    cells[ROOT_CELL] = pki.root.certificate
    return cells


def commission_sandbox_meter(
    pki: TestPki,
    device: Eui64,
    profile: MeterProfile,
    *,
    supplier: str = "supplier-a",
    transitional_cos: str = "tcos-ds",
    seq_numbers: Mapping[RemotePartyRole, int] | None = None,
) -> MeterState:
    """A meter commissioned in the sandbox (see the module docstring)."""
    cells = sandbox_cells(pki, supplier=supplier, transitional_cos=transitional_cos)
    return commission_meter(
        device, cells=cells, certificates=profile.certificates, seq_numbers=seq_numbers
    )


@dataclass(frozen=True, slots=True)
class DeviceCertificates:
    """A device's two SMKI certificates (§7.3)."""

    digital_signature: SmkiCertificate
    key_agreement: SmkiCertificate


def sandbox_device_certificates(
    pki: TestPki, device: Eui64, keys: DerivedDeviceKeys
) -> DeviceCertificates:
    """DS and KA device certificates from the PKI's device CA for the derived keys."""
    ca = pki.device_ca

    def mint(usage: KeyUsage, bit: X509KeyUsage) -> SmkiCertificate:
        return mint_certificate(
            subject=DistinguishedName.build(),
            issuer_name=ca.certificate.subject,
            public_key=keys.public_key(device, usage),
            signing_key=ca.private_key(),
            not_before=pki.valid_from,
            not_after=DEVICE_NOT_AFTER,
            key_usages=(bit,),
            policies=(pki.device_policy,),
            authority_key_identifier=ca.certificate.subject_key_identifier,
            device=device,
        )

    return DeviceCertificates(
        mint(KeyUsage.DIGITAL_SIGNATURE, X509KeyUsage.DIGITAL_SIGNATURE),
        mint(KeyUsage.KEY_AGREEMENT, X509KeyUsage.KEY_AGREEMENT),
    )
