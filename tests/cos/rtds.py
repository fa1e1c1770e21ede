"""A 6.23 world built from the RTDS 6.23 vectors, for the cos tests.

The replacement and certification-path certificates are taken from
reference/rtds/6.23_CS02bSupplierByTransCoS/CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX
(loaded through tests/reference.py). They belong to GITTESTSUPPLIER2
(90B3D51F30030000), who is therefore the requester here. The ZA root that
issued the Z1 CA is not published, so the trust anchor is the Z1 CA itself,
and the certificates are judged on 2025-06-01, when they were valid. The
meter is the RTDS test ESME 00DB1234567890A0 at MPAN 1312345678333.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from openecos.cos import CheckConfig, CheckInputs, CosParties, CosParty
from openecos.duis import (
    ReplacementCertificatesCoS,
    RequestHeader,
    RequestId,
    ServiceRequest,
    UpdateSecurityCredentialsCoS,
)
from openecos.eui import Eui64
from openecos.gbcs import (
    GbcsFrame,
    UpdateSecurityCredentialsCommand,
    decode_frame,
    decode_payload,
)
from openecos.smki import SmkiCertificate
from openecos.store.enums import CosCredentialState, DeviceStatus, DeviceType, UserRole
from openecos.store.records import Device, PartyUser, RegisteredSupplier, Registration
from tests.reference import RTDS_623, device_certificate_pem, rtds_hex, zaz1_entry

PREFIX = "CS02bSupplierByTransCoS_6.23_"
IMMEDIATE_COMMAND = PREFIX + "IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
FUTURE_DATED_COMMAND = PREFIX + "FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX"
CANCELLATION_COMMAND = PREFIX + "CANCELLATION_SUCCESS_COMMAND_GBCS.HEX"
IMMEDIATE_RESPONSE = PREFIX + "IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"
FUTURE_DATED_RESPONSE = PREFIX + "FUTURE_DATED_SUCCESS_RESPONSE_GBCS.HEX"
CANCELLATION_RESPONSE = PREFIX + "CANCELLATION_SUCCESS_RESPONSE_GBCS.HEX"
FUTURE_DATED_ALERT = PREFIX + "8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX"

DEVICE = Eui64.parse("00DB1234567890A0")
TCOS = Eui64.parse("90B3D51F30000004")
ECOS = Eui64.parse("90B3D51F30000008")  # an ECoS Party EUI for the tests (not published)
SUPPLIER1 = Eui64.parse("90B3D51F30010000")
SUPPLIER2 = Eui64.parse("90B3D51F30030000")
MPAN = "1312345678333"
NOW = datetime(2025, 6, 1, tzinfo=UTC)
FUTURE = datetime(2030, 1, 2, tzinfo=UTC)
CANCEL = datetime(3000, 12, 31, tzinfo=UTC)
SINCE = datetime(2020, 1, 1, tzinfo=UTC)

PARTIES = CosParties(
    tcos=CosParty("TCoS Party", TCOS, "Z1-transitionalCoS-ds"),
    ecos=CosParty("ECoS Party", ECOS, "ecos-ds"),
)


def frame(name: str) -> GbcsFrame:
    return decode_frame(rtds_hex(RTDS_623, name))


def rtds_command(name: str) -> UpdateSecurityCredentialsCommand:
    content = decode_payload(frame(name))
    assert isinstance(content, UpdateSecurityCredentialsCommand)
    return content


@cache
def replacement_certificates() -> tuple[bytes, bytes, bytes]:
    ds, ka, ka_top_up = (
        r.replacement_certificate for r in rtds_command(IMMEDIATE_COMMAND).replacements
    )
    return ds, ka, ka_top_up


@cache
def certification_path() -> tuple[bytes, ...]:
    return rtds_command(IMMEDIATE_COMMAND).certification_path


@cache
def z1_anchor() -> SmkiCertificate:
    return SmkiCertificate.from_der(certification_path()[0])


def zaz1_certificate_der(name: str) -> bytes:
    return SmkiCertificate.from_pem(zaz1_entry(name)["certificate"]).der


def zaz1_private_key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(zaz1_entry(name)["privateKey"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def device_certificate(usage: str) -> SmkiCertificate:
    return SmkiCertificate.from_pem(device_certificate_pem(usage))


class SoftwareSigner:
    """A DigestSigner over a private key in memory (tests only; the service uses keys)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign_digest(self, digest: bytes) -> bytes:
        der = self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class SoftwareKeyAgreement:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        return self._key.exchange(ec.ECDH(), peer_public_key)


def service_request(
    *,
    originator: Eui64 = SUPPLIER2,
    target: Eui64 = DEVICE,
    counter: int = 1006,
    execution_date_time: datetime | None = None,
    **body: Any,
) -> ServiceRequest:
    """The 6.23 of the DUIS templates, with the RTDS certificates; fields overridable."""
    ds, ka, ka_top_up = replacement_certificates()
    values: dict[str, Any] = {
        "supplier_floor_seq_number": 0,
        "supplier_prepayment_top_up_floor_seq_number": 0,
        "replacement_certificates": ReplacementCertificatesCoS(ds, ka, ka_top_up),
        "certification_path_certificates": certification_path(),
        "apply_time_based_cpv_checks": True,
        "import_mpxn": MPAN,
        "execution_date_time": execution_date_time,
    }
    values.update(body)
    return ServiceRequest(
        RequestHeader(RequestId(originator, target, counter), 1, "6.23", "6.23"),
        UpdateSecurityCredentialsCoS(**values),
    )


def user(user_id: Eui64 = SUPPLIER2, roles: frozenset[UserRole] | None = None) -> PartyUser:
    return PartyUser(user_id, "party-2", roles or frozenset({UserRole.IMPORT_SUPPLIER}))


def device(**changes: Any) -> Device:
    base = Device(
        eui=DEVICE,
        device_type=DeviceType.ESME,
        status=DeviceStatus.COMMISSIONED,
        mpxn=MPAN,
        manufacturer="RTDS",
        model="ESME",
        firmware_version=None,
        credential_state=CosCredentialState.TCOS,
    )
    return replace(base, **changes)


def registered(
    user_id: Eui64 = SUPPLIER2,
    mpid: str = "SUP2",
    since: datetime = SINCE,
    until: datetime | None = None,
    mpxn: str = MPAN,
) -> RegisteredSupplier:
    return RegisteredSupplier(
        Registration(mpxn, mpid, since, until), user_id, "party-2", UserRole.IMPORT_SUPPLIER
    )


def inputs(request: ServiceRequest | None = None, **changes: Any) -> CheckInputs:
    """CheckInputs that pass every check; override any field."""
    request = request or service_request()
    base = CheckInputs(
        request=request,
        signer=request.header.request_id.originator,
        user=user(request.header.request_id.originator),
        device=device(),
        registered_supplier=registered(request.header.request_id.originator),
        in_flight_command=None,
        now=NOW,
        trust_anchors=(z1_anchor(),),
        config=CheckConfig(),
    )
    return replace(base, **changes)


ACB_KA = "Z1-accessControlBroker-ka"


class DeviceKeyAgreement:
    """The meter's ECDH played from the ACB's side: ECDH(dev, ACB pub) = ECDH(ACB, dev pub).

    The meter's private key is not published; its KA certificate is
    (reference/keystore/devices/00db1234567890a0-ka.pem).
    """

    def __init__(self) -> None:
        self._acb = zaz1_private_key(ACB_KA)
        self._device = device_certificate("ka").public_key

    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        return self._acb.exchange(ec.ECDH(), self._device)
