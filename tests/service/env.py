"""A small sandbox for the service tests: a PKI on disk, a store with two suppliers and meters.

Supplier A (user 90B3D51F40010000, MPID AAAA) is the registered supplier of
every meter at first; supplier B (90B3D51F40020000, MPID BBBB) takes over by
registration, then asks for the meter's credentials with a signed 6.23.
``TCOS_METER`` holds the TCoS Party's certificate in its transitionalCoS
cell, ``ECOS_METER`` the ECoS Party's. The DUIS schema comes from the
reference folder (reference/duis/xsd).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import httpx
import uvicorn

from openecos.api import create_app
from openecos.device import AnchorCertificate, DerivedDeviceKeys, sandbox_cells
from openecos.device.commissioning import sandbox_device_certificates
from openecos.duis import (
    PrivateKeySigner,
    ReplacementCertificatesCoS,
    RequestHeader,
    RequestId,
    ServiceRequest,
    SigningIdentity,
    UpdateSecurityCredentialsCoS,
    build_update_security_credentials_cos,
    issuer_of,
    sign_document,
)
from openecos.eui import Eui64
from openecos.service import (
    DEFAULT_DEVICE_KEY_SEED,
    ServiceConfig,
    ServiceRuntime,
    WorkerSettings,
    open_runtime,
)
from openecos.service.clock import Clock
from openecos.smki import SmkiCertificate, TestPki, sandbox_pki, write_test_pki
from openecos.smki.sandbox import SUPPLIER_A, SUPPLIER_B
from openecos.store import (
    CosCredentialState,
    Device,
    DeviceStatus,
    DeviceType,
    KnownCertificate,
    Mpid,
    Party,
    PartyUser,
    Registration,
    Store,
    TrustAnchorCell,
    UserRole,
)
from tests.reference import reference_path

SEED = DEFAULT_DEVICE_KEY_SEED  # what `openecos serve` uses without a sandbox
TCOS_METER = Eui64.parse("00DB120000000001")
ECOS_METER = Eui64.parse("00DB120000000002")
SPARE_METERS = tuple(Eui64.parse(f"00DB1200000001{i:02X}") for i in range(1, 17))
MPXN = {TCOS_METER: "1000000000001", ECOS_METER: "1000000000002"}
MPXN.update({m: f"10000000001{i:02d}" for i, m in enumerate(SPARE_METERS)})
REGISTERED_FROM = datetime(2025, 1, 1, tzinfo=UTC)
SWITCH_AT = datetime(2025, 6, 1, tzinfo=UTC)


@cache
def pki() -> TestPki:
    return sandbox_pki()


def _known(certificate: SmkiCertificate) -> KnownCertificate:
    assert certificate.key_usage is not None
    return KnownCertificate(
        der=certificate.der,
        issuer_name=issuer_of(certificate.der),
        serial=certificate.serial,
        subject_eui=certificate.eui,
        role=certificate.role,
        key_usage=certificate.key_usage,
    )


def populate(store: Store, meters: dict[Eui64, CosCredentialState]) -> None:
    the_pki = pki()
    keys = DerivedDeviceKeys(SEED)
    with store.transaction() as tx:
        for party_id, user, mpid in (("A", SUPPLIER_A, "AAAA"), ("B", SUPPLIER_B, "BBBB")):
            tx.parties.add_party(Party(party_id, f"Supplier {party_id}"))
            tx.parties.add_user(PartyUser(user, party_id, frozenset({UserRole.IMPORT_SUPPLIER})))
            tx.parties.add_mpid(Mpid(mpid, party_id, user, UserRole.IMPORT_SUPPLIER))
        for entry in the_pki.entries:
            if entry.certificate.key_usage is not None:
                tx.certificates.add(_known(entry.certificate))
        for device, state in meters.items():
            mpxn = MPXN[device]
            tx.devices.add(
                Device(
                    device,
                    DeviceType.ESME,
                    DeviceStatus.COMMISSIONED,
                    mpxn,
                    "OPENECOS",
                    "SIM-1",
                    "1.0",
                    state,
                )
            )
            certificates = sandbox_device_certificates(the_pki, device, keys)
            for c in (certificates.digital_signature, certificates.key_agreement):
                tx.certificates.add(_known(c))
            cells = sandbox_cells(
                the_pki,
                transitional_cos="ecos-ds" if state is CosCredentialState.ECOS else "tcos-ds",
            )
            anchors = []
            for cell, certificate in cells.items():
                anchor = AnchorCertificate.of(certificate)
                anchors.append(
                    TrustAnchorCell(
                        cell.remote_party_role,
                        cell.key_usage,
                        cell.cell_usage,
                        certificate.der,
                        anchor.subject_unique_id,
                        anchor.subject_key_id,
                    )
                )
            tx.devices.replace_trust_anchors(device, anchors)
            tx.registrations.add(Registration(mpxn, "AAAA", REGISTERED_FROM, SWITCH_AT))
            tx.registrations.add(Registration(mpxn, "BBBB", SWITCH_AT))


def signed_6_23(
    device: Eui64,
    counter: int,
    *,
    supplier: str = "supplier-b",
    originator: Eui64 = SUPPLIER_B,
    execution: datetime | None = None,
    mpxn: str | None = None,
    replacement_owner: str | None = None,
) -> bytes:
    """A signed SR 6.23 from ``supplier`` for ``device`` (certificates of ``replacement_owner``)."""
    the_pki = pki()
    owner = replacement_owner or supplier
    request = ServiceRequest(
        RequestHeader(RequestId(originator, device, counter), 1, "6.23", "6.23"),
        UpdateSecurityCredentialsCoS(
            supplier_floor_seq_number=0,
            replacement_certificates=ReplacementCertificatesCoS(
                the_pki.entry(f"{owner}-ds").certificate.der,
                the_pki.entry(f"{owner}-ka").certificate.der,
                the_pki.entry(f"{owner}-ka-topup").certificate.der,
            ),
            certification_path_certificates=(the_pki.organisation_ca.certificate.der,),
            apply_time_based_cpv_checks=True,
            import_mpxn=mpxn or MPXN[device],
            supplier_prepayment_top_up_floor_seq_number=0,
            execution_date_time=execution,
        ),
    )
    entry = the_pki.entry(f"{supplier}-xml-sign")
    identity = SigningIdentity.for_certificate(
        PrivateKeySigner(entry.private_key()), entry.certificate.der
    )
    return sign_document(build_update_security_credentials_cos(request), identity)


@dataclass(frozen=True)
class Environment:
    directory: Path
    store_url: str
    pki_dir: Path

    def config(self, **changes: object) -> ServiceConfig:
        values: dict[str, object] = {
            "store_url": self.store_url,
            "pki_dir": self.pki_dir,
            "xsd_dir": reference_path("duis", "xsd"),
            "device_key_seed": SEED,
            "worker": WorkerSettings(
                lease=timedelta(seconds=2), response_timeout=timedelta(seconds=3)
            ),
            "poll_interval": 0.02,
        }
        values.update(changes)
        return ServiceConfig(**values)  # type: ignore[arg-type]


def make_environment(
    directory: Path, store_url: str, meters: dict[Eui64, CosCredentialState]
) -> Environment:
    pki_dir = directory / "pki"
    write_test_pki(pki(), pki_dir)
    with Store.open(store_url) as store:
        populate(store, meters)
    return Environment(directory, store_url, pki_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(runtime: ServiceRuntime) -> Iterator[httpx.Client]:
    """The runtime's API on 127.0.0.1 (ephemeral port) in a thread, and a client for it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: _answers(client))
            yield client
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def wait_until(condition: object, timeout: float = 20.0) -> None:
    """Polls ``condition`` (a callable) until true; the timeout only bounds a failing test."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def runtime_for(env: Environment, clock: Clock | None = None, **changes: object) -> ServiceRuntime:
    return open_runtime(env.config(**changes), clock)


# -- reading what the service answered ------------------------------------------------------

_SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"


def response_code(xml: bytes | str) -> str:
    """The ``sr:ResponseCode`` of a DUIS response."""
    from lxml import etree

    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    code = root.find(f"{_SR}Header/{_SR}ResponseCode")
    assert code is not None
    return str(code.text)


def element_text(xml: str, path: str) -> str | None:
    from lxml import etree

    found = etree.fromstring(xml.encode()).find(path.replace("sr:", _SR))
    return None if found is None else str(found.text)


def gbcs_payload(xml: str) -> bytes:
    """The GBCS bytes a response or a future-dated device alert carries."""
    import base64

    for path in (
        "sr:Body/sr:ResponseMessage/sr:GBCSPayload",
        "sr:Body/sr:ResponseMessage/sr:FutureDatedDeviceAlertMessage/sr:GBCSPayload",
    ):
        text = element_text(xml, path)
        if text is not None:
            return base64.b64decode(text)
    raise AssertionError("no GBCSPayload")


def post(client: httpx.Client, body: bytes) -> str:
    answer = client.post("/duis", content=body, headers={"content-type": "application/xml"})
    assert answer.status_code == 200, answer.text
    return response_code(answer.content)


def request_id(originator: Eui64, device: Eui64, counter: int) -> str:
    return RequestId(originator, device, counter).duis


def status_of(client: httpx.Client, rid: str) -> str:
    return str(client.get(f"/api/requests/{rid}").json()["status"])


# -- the service as a separate process ------------------------------------------------------


@contextmanager
def serve_process(
    env: Environment, *, worker_id: str, crash_at: str | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """``openecos serve`` in a subprocess on a free port, and a client once it answers."""
    port = free_port()
    environ = dict(os.environ)
    environ.pop("OPENECOS_CRASH_AT", None)
    if crash_at is not None:
        environ["OPENECOS_CRASH_AT"] = crash_at
    command = [
        str(Path(sys.executable).with_name("openecos")),
        "serve",
        "--store", env.store_url,
        "--pki", str(env.pki_dir),
        "--xsd", str(reference_path("duis", "xsd")),
        "--port", str(port),
        "--worker-id", worker_id,
        "--lease", "1",
        "--response-timeout", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=environ, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: process.poll() is not None or _answers(client), timeout=60)
            yield process, client
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()
