"""The end-to-end world: the service-test sandbox (tests/service/env.py) plus what the
check table needs, and a 6.23 builder with every field under the test's control.

Added to the service sandbox: a network operator user (role ED, not a supplier);
a gas proxy function (a device a 6.23 cannot target) and an ESME that is
installed but not commissioned, each at an MPxN registered to supplier B; an
organisation certificate of supplier B that expired before the tests' clock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from lxml import etree

from openecos.duis import (
    PrivateKeySigner,
    ReplacementCertificatesCoS,
    RequestHeader,
    RequestId,
    ServiceRequest,
    SigningIdentity,
    UpdateSecurityCredentialsCoS,
    build_update_security_credentials_cos,
    sign_document,
)
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.service import encode_meter
from openecos.service.runtime import ServiceRuntime
from openecos.smki import PkiEntry
from openecos.smki.sandbox import ECOS_PARTY, NETWORK_OPERATOR, SUPPLIER_B, TCOS_PARTY
from openecos.store import (
    CosCredentialState,
    Device,
    DeviceStatus,
    DeviceType,
    Party,
    PartyUser,
    Registration,
    Store,
    UserRole,
)
from tests.service.env import (
    ECOS_METER,
    MPXN,
    REGISTERED_FROM,
    SPARE_METERS,
    TCOS_METER,
    Environment,
    make_environment,
    pki,
)

NOW = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)

GAS_PROXY = Eui64.parse("00DB120000000F01")  # a GPF: not a meter
UNCOMMISSIONED_METER = Eui64.parse("00DB120000000F02")
UNKNOWN_DEVICE = Eui64.parse("00DB120000000FFF")  # in no inventory
EXTRA_MPXN = {GAS_PROXY: "2000000000001", UNCOMMISSIONED_METER: "2000000000002"}


@cache
def expired_supplier_b_ds() -> PkiEntry:
    """Supplier B's DS certificate, issued by the organisation CA, expired before NOW."""
    return pki().issue_organisation(
        "supplier-b-ds-expired",
        eui=SUPPLIER_B,
        role=RemotePartyRole.SUPPLIER,
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
        not_before=datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime(2025, 3, 1, tzinfo=UTC),
    )


def make_world(directory: Path, store_url: str) -> Environment:
    """The service sandbox with every meter of tests/service/env.py, plus the extras above."""
    meters = {TCOS_METER: CosCredentialState.TCOS, ECOS_METER: CosCredentialState.ECOS}
    meters.update(
        {m: CosCredentialState.TCOS if i % 2 else CosCredentialState.ECOS
         for i, m in enumerate(SPARE_METERS)}
    )  # fmt: skip
    env = make_environment(directory, store_url, meters)
    with Store.open(store_url) as store, store.transaction() as tx:
        tx.parties.add_party(Party("N", "Network operator"))
        tx.parties.add_user(
            PartyUser(NETWORK_OPERATOR, "N", frozenset({UserRole.ELECTRICITY_DISTRIBUTOR}))
        )
        for eui, device_type, status in (
            (GAS_PROXY, DeviceType.GPF, DeviceStatus.COMMISSIONED),
            (UNCOMMISSIONED_METER, DeviceType.ESME, DeviceStatus.INSTALLED_NOT_COMMISSIONED),
        ):
            mpxn = EXTRA_MPXN[eui]
            tx.devices.add(
                Device(
                    eui, device_type, status, mpxn, "OPENECOS", "SIM-1", "1.0",
                    CosCredentialState.TCOS,
                )
            )  # fmt: skip
            tx.registrations.add(Registration(mpxn, "BBBB", REGISTERED_FROM))
    return env


# -- requests -----------------------------------------------------------------------------

_counter = itertools.count(1000)


def next_counter() -> int:
    """RequestID counters increase per originator; one sequence for all keeps that true."""
    return next(_counter)


def certificate(name: str) -> bytes:
    return pki().entry(name).certificate.der


def build_request(
    device: Eui64,
    counter: int,
    *,
    signer: str = "supplier-b-xml-sign",
    originator: Eui64 = SUPPLIER_B,
    mpxn: str | None = None,
    execution: datetime | None = None,
    replacements: tuple[bytes, bytes, bytes] | None = None,
    path: tuple[bytes, ...] | None = None,
    signing_entry: PkiEntry | None = None,
) -> bytes:
    """A signed 6.23; by default a valid immediate one from supplier B for ``device``."""
    the_pki = pki()
    ds, ka, top_up = replacements or (
        certificate("supplier-b-ds"),
        certificate("supplier-b-ka"),
        certificate("supplier-b-ka-topup"),
    )
    request = ServiceRequest(
        RequestHeader(RequestId(originator, device, counter), 1, "6.23", "6.23"),
        UpdateSecurityCredentialsCoS(
            supplier_floor_seq_number=0,
            replacement_certificates=ReplacementCertificatesCoS(ds, ka, top_up),
            certification_path_certificates=path or (the_pki.organisation_ca.certificate.der,),
            apply_time_based_cpv_checks=True,
            import_mpxn=mpxn or MPXN.get(device) or EXTRA_MPXN[device],
            supplier_prepayment_top_up_floor_seq_number=0,
            execution_date_time=execution,
        ),
    )
    return sign_document(
        build_update_security_credentials_cos(request), identity(signer, signing_entry)
    )


def identity(name: str, entry: PkiEntry | None = None) -> SigningIdentity:
    entry = entry or pki().entry(name)
    return SigningIdentity.for_certificate(
        PrivateKeySigner(entry.private_key()), entry.certificate.der
    )


def resign(document: bytes, signer: str = "supplier-b-xml-sign") -> bytes:
    """Re-signs edited XML (whitespace-only text removed, as sign_document wants)."""
    root = etree.fromstring(document, etree.XMLParser(remove_blank_text=True))
    return sign_document(root, identity(signer))


# -- what "nothing changed" means -----------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused request must leave as it was, for one target device."""

    tcos_counter: int | None
    ecos_counter: int | None
    commands: int
    cells: object
    meter: bytes | None
    credential_state: object

    @classmethod
    def take(cls, runtime: ServiceRuntime, device: Eui64) -> Snapshot:
        store = runtime.store
        known = _maybe_device(store, device)
        state = runtime.estate.state(device) if known is not None else None
        with store.engine.connect() as conn:
            from sqlalchemy import func, select

            from openecos.store import schema

            commands = conn.execute(select(func.count()).select_from(schema.commands)).scalar()
        return cls(
            tcos_counter=store.signing_counters.last(TCOS_PARTY),
            ecos_counter=store.signing_counters.last(ECOS_PARTY),
            commands=int(commands or 0),
            cells=store.devices.trust_anchors(device) if known is not None else None,
            meter=None if state is None else encode_meter(state)[0],
            credential_state=None if known is None else known.credential_state,
        )


def _maybe_device(store: Store, device: Eui64) -> Device | None:
    from openecos.store import NotFound

    try:
        return store.devices.get(device)
    except NotFound:
        return None


def later(days: int) -> datetime:
    return NOW + timedelta(days=days)
