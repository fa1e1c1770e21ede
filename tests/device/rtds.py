"""A meter in the state the RTDS 6.23 / TransCoSByTransCoS / 6.24.1 vectors assume.

Cells come from the ZAZ1 keystore (reference/keystore/zaz1-keystore.json) via
tests/reference.py. The ZA root that issued the Z1 CA is not available, so the
meter's root anchor is the Z1 CA itself, taken from the certificationPath of
CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX, and
certificates are validated on 2025-06-01, when the Z1 generation was valid.

The device's private keys are not published. Its key agreement is therefore
played from the other side: ECDH(device KA, ACB KA public) equals
ECDH(ACB KA private, device KA public), and the device certificate
(reference/keystore/devices/00db1234567890a0-ka.pem) is public. Its responses
are signed with a fresh key, so tests compare everything up to the signature.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.device import (
    ACB_DS_CELL,
    ACB_KA_CELL,
    NETWORK_OPERATOR_DS_CELL,
    NETWORK_OPERATOR_KA_CELL,
    ROOT_CELL,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    DeviceKey,
    DeviceKeyTable,
    MeterProfile,
    MeterState,
    commission_meter,
)
from openecos.eui import Eui64
from openecos.gbcs import decode_frame, decode_payload
from openecos.gbcs.codes import RemotePartyRole
from openecos.gbcs.cs02b import UpdateSecurityCredentialsCommand
from openecos.smki import ZAZ1_ORGANISATION_POLICY, SmkiCertificate
from tests.reference import RTDS_623, device_certificate_pem, rtds_hex, zaz1_entry

DEVICE = Eui64.parse("00DB1234567890A0")
TCOS = Eui64.parse("90B3D51F30000004")
ACB = Eui64.parse("90B3D51F30000002")
RTDS_NOW = datetime(2025, 6, 1, tzinfo=UTC)
IMMEDIATE = "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"


def zaz1_certificate(name: str) -> SmkiCertificate:
    return SmkiCertificate.from_pem(zaz1_entry(name)["certificate"])


def zaz1_private_key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(zaz1_entry(name)["privateKey"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def z1_ca() -> bytes:
    command = decode_payload(decode_frame(rtds_hex(RTDS_623, IMMEDIATE)))
    assert isinstance(command, UpdateSecurityCredentialsCommand)
    return command.certification_path[0]


class MirroredKeyAgreement:
    """The device's ECDH, computed from the ACB's private key and the device's public key."""

    def __init__(self) -> None:
        self._acb = zaz1_private_key("Z1-accessControlBroker-ka")
        certificate = x509.load_pem_x509_certificate(device_certificate_pem("ka"))
        device_key = certificate.public_key()
        assert isinstance(device_key, ec.EllipticCurvePublicKey)
        self._device = device_key

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        if peer_public_key.public_numbers() != self._acb.public_key().public_numbers():
            # Any other peer: a secret the device would not share with it.
            return bytes(32)
        return self._acb.exchange(ec.ECDH(), self._device)


def rtds_profile() -> tuple[MeterProfile, DeviceKey]:
    """The profile and the (fresh) key the meter signs with."""
    signer = DeviceKey(ec.generate_private_key(ec.SECP256R1()))
    keys = DeviceKeyTable()
    keys.add(DEVICE, signer=signer, key_agreement=MirroredKeyAgreement())
    return MeterProfile(keys=keys, policies=frozenset({ZAZ1_ORGANISATION_POLICY})), signer


def rtds_meter(profile: MeterProfile) -> MeterState:
    cells = {
        ROOT_CELL: z1_ca(),
        SUPPLIER_DS_CELL: zaz1_certificate("Z1-supplier-ds"),
        SUPPLIER_KA_CELL: zaz1_certificate("Z1-supplier-ka"),
        SUPPLIER_KA_TOP_UP_CELL: zaz1_certificate("Z1-supplierPP-ka"),
        NETWORK_OPERATOR_DS_CELL: zaz1_certificate("Z1-networkOperator-ds"),
        NETWORK_OPERATOR_KA_CELL: zaz1_certificate("Z1-networkOperator-ka"),
        ACB_DS_CELL: zaz1_certificate("Z1-accessControlBroker-ds"),
        ACB_KA_CELL: zaz1_certificate("Z1-accessControlBroker-ka"),
        TRANSITIONAL_COS_CELL: zaz1_certificate("Z1-transitionalCoS-ds"),
    }
    return commission_meter(
        DEVICE,
        cells=cells,
        certificates=profile.certificates,
        # The 6.24.1 response reports the network operator's seq number as 1.
        seq_numbers={RemotePartyRole.NETWORK_OPERATOR: 1},
        alert_counter=2001,  # the 6.23 8F66 alert's counter
    )
