"""Change of supplier end to end over HTTP, beside its in-process floor (issue 3).

What it measures, in one run:

1. **Floor** (this process, one core, no HTTP, no database): one switch's
   crypto and XML work through the project's own functions, stage by stage:
   parse + XSD + XMLDSig verify of the signed 6.23, CS02b 0x0107 build + sign
   + MAC, the meter's verify + execute + sign, the DCC's verify of the meter's
   response (the floor the issue names), and beside it what the service also
   signs and checks for every switch (signer binding, the cos checks, the
   signed DUIS acknowledgement, I0 response and two DCC alerts).
2. **End to end**: the real service (``open_runtime`` + ``openecos.api`` under
   uvicorn, as ``openecos serve`` runs it) in separate processes on a durable
   store (SQLite file in WAL with ``synchronous=FULL``, or PostgreSQL in a
   fresh schema), driven over loopback HTTP from this process (``--client
   raw``, the default: a hand-written keep-alive HTTP/1.1 client, because
   httpx itself tops out near 700 requests/s here; ``--client httpx``: one
   httpx AsyncClient per lane):

   - acknowledgement throughput with every lane busy (closed loop), and the
     switches completed per second until the last gaining supplier's I0 is in
     its outbox;
   - acknowledgement latency p50/p99 at a fixed offered load (open loop: each
     request has a scheduled send time and its latency counts from then, so a
     slow server cannot hide its queue).

   At the end it checks every request was acknowledged I99, completed with
   I0, the gaining supplier's I0 response is in its outbox, and every meter
   (the simulated meter and the inventory) holds the gaining supplier's
   certificates.

Why lanes. The service refuses a RequestID whose counter does not exceed the
originator's last one (docs/duis-xmldsig-smki.md §6), so one DUIS user cannot
have two requests in flight without risking a reordering refusal. The bench
adds ``--lanes`` gaining suppliers to the sandbox (a party, a user ID holding
IS and GS MPIDs, its DS/KA/KA-top-up and XML-signing certificates), registers
each meter to one of them, and gives each lane at most one request in flight,
in counter order. Each switch has its own meter.

Run: ``.venv/bin/python bench/cos_http.py`` (SQLite) or
``.venv/bin/python bench/cos_http.py --store postgresql+psycopg://postgres@127.0.0.1:5432/test``.
``--help`` lists the knobs (process layout, counts, offered load).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import best_rate

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference"
DEFAULT_XSD = Path(os.environ.get("OPENECOS_DUIS_XSD", REFERENCE / "duis" / "xsd"))
#: Entity IDs of the bench's gaining suppliers (beside the sandbox's 90-B3-D5-1F-40-…).
LANE_EUI_PREFIX = "90B3D51F41"
_RESPONSE_CODE = re.compile(rb"ResponseCode>([A-Z0-9]+)<")


# -- the plan: lanes, meters, signed requests ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lane:
    """One gaining supplier: its user ID, MPIDs and PKI entry prefix."""

    index: int
    user_hex: str
    party_id: str
    mpid_is: str
    mpid_gs: str
    prefix: str


@dataclass(slots=True)
class Switch:
    lane: int
    device_hex: str
    counter: int
    body: bytes = b""


def lane_of(index: int) -> Lane:
    user = f"{LANE_EUI_PREFIX}{index:02X}0000"
    return Lane(
        index, user, f"BENCH-{index:02d}", f"B{index:02d}E", f"B{index:02d}G", f"bench{index:02d}"
    )


def _sign_batch(
    work: list[tuple[str, str, int, str, bytes, bytes, bytes, bytes, bytes, bytes]],
) -> list[bytes]:
    """Builds and signs 6.23 requests (runs in a pool worker)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

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

    identities: dict[bytes, SigningIdentity] = {}
    out = []
    for user, device, counter, mpxn, ds, ka, top_up, org_ca, key_pem, xml_cert in work:
        identity = identities.get(key_pem)
        if identity is None:
            key = serialization.load_pem_private_key(key_pem, None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            identity = SigningIdentity.for_certificate(PrivateKeySigner(key), xml_cert)
            identities[key_pem] = identity
        request = ServiceRequest(
            RequestHeader(
                RequestId(Eui64.parse(user), Eui64.parse(device), counter), 1, "6.23", "6.23"
            ),
            UpdateSecurityCredentialsCoS(
                supplier_floor_seq_number=0,
                replacement_certificates=ReplacementCertificatesCoS(ds, ka, top_up),
                certification_path_certificates=(org_ca,),
                apply_time_based_cpv_checks=True,
                import_mpxn=mpxn,
                supplier_prepayment_top_up_floor_seq_number=0,
            ),
        )
        out.append(sign_document(build_update_security_credentials_cos(request), identity))
    return out


@dataclass(slots=True)
class Plan:
    directory: Path
    store_url: str
    lanes: list[Lane]
    warmup: list[Switch]
    throughput: list[Switch]
    latency: list[Switch]
    setup_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def all(self) -> list[Switch]:
        return [*self.warmup, *self.throughput, *self.latency]


def make_plan(
    directory: Path, store_url: str | None, *, lanes: int, throughput: int, latency: int
) -> Plan:
    """Sandbox + lanes + registrations + signed requests (see the module docstring)."""
    from openecos.duis import issuer_of
    from openecos.eui import Eui64
    from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
    from openecos.sandbox import create_sandbox
    from openecos.smki import load_test_pki
    from openecos.smki.sandbox import PartyCertificate, issue_party_certificates
    from openecos.store import DeviceType, KnownCertificate, Mpid, Party, PartyUser, UserRole

    timings: dict[str, float] = {}
    meters = lanes + throughput + latency
    t = time.perf_counter()
    sandbox = create_sandbox(directory, meters=meters, store_url=store_url)
    timings["sandbox"] = time.perf_counter() - t

    t = time.perf_counter()
    pki = load_test_pki(directory / sandbox.manifest.pki)
    lane_list = [lane_of(i) for i in range(lanes)]
    entries = []
    for lane in lane_list:
        eui = Eui64.parse(lane.user_hex)
        rows = (
            PartyCertificate(
                f"{lane.prefix}-ds",
                eui,
                RemotePartyRole.SUPPLIER,
                KeyUsage.DIGITAL_SIGNATURE,
                CellUsage.MANAGEMENT,
                f"OPENECOS BENCH {lane.index}",
            ),
            PartyCertificate(
                f"{lane.prefix}-ka",
                eui,
                RemotePartyRole.SUPPLIER,
                KeyUsage.KEY_AGREEMENT,
                CellUsage.MANAGEMENT,
            ),
            PartyCertificate(
                f"{lane.prefix}-ka-topup",
                eui,
                RemotePartyRole.SUPPLIER,
                KeyUsage.KEY_AGREEMENT,
                CellUsage.PREPAYMENT_TOP_UP,
            ),
            PartyCertificate(
                f"{lane.prefix}-xml-sign",
                eui,
                RemotePartyRole.XML_SIGN,
                KeyUsage.DIGITAL_SIGNATURE,
                None,
            ),
        )
        entries.extend(issue_party_certificates(pki, rows))
    # Kept in memory only: the service finds users' certificates in the store, not the PKI.
    pki = pki.with_entries(*entries)

    with sandbox.open_store() as store:
        devices = store.devices.find(limit=meters + 10)
        devices = [
            d
            for d in devices
            if d.mpxn is not None and d.device_type in (DeviceType.ESME, DeviceType.GSME)
        ]
        devices.sort(key=lambda d: d.eui.hex)
        if len(devices) < meters:
            raise SystemExit(f"sandbox has {len(devices)} meters, {meters} needed")
        with store.transaction() as tx:
            for lane in lane_list:
                eui = Eui64.parse(lane.user_hex)
                tx.parties.add_party(Party(lane.party_id, f"Bench supplier {lane.index}"))
                tx.parties.add_user(
                    PartyUser(
                        eui,
                        lane.party_id,
                        frozenset({UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER}),
                    )
                )
                tx.parties.add_mpid(
                    Mpid(lane.mpid_is, lane.party_id, eui, UserRole.IMPORT_SUPPLIER)
                )
                tx.parties.add_mpid(Mpid(lane.mpid_gs, lane.party_id, eui, UserRole.GAS_SUPPLIER))
                for suffix in ("ds", "ka", "ka-topup", "xml-sign"):
                    certificate = pki.entry(f"{lane.prefix}-{suffix}").certificate
                    assert certificate.key_usage is not None
                    tx.certificates.add(
                        KnownCertificate(
                            certificate.der,
                            issuer_of(certificate.der),
                            certificate.serial,
                            certificate.eui,
                            certificate.role,
                            certificate.key_usage,
                        )
                    )
            # The lanes become the registered suppliers a day ago (6.23 is the gaining
            # supplier's request, made once it is registered: cos check "registered-supplier").
            since = datetime.now(UTC) - timedelta(days=1)
            for i, device in enumerate(devices[:meters]):
                lane = lane_list[i % lanes]
                mpid = lane.mpid_is if device.device_type is DeviceType.ESME else lane.mpid_gs
                assert device.mpxn is not None
                tx.registrations.change_supplier(device.mpxn, mpid, since)
    timings["lanes+registrations"] = time.perf_counter() - t

    # Requests: meter i to lane i % lanes, counters 1, 2, ... per lane in send order.
    t = time.perf_counter()
    org_ca = pki.organisation_ca.certificate.der
    counters = [0] * lanes
    switches: list[Switch] = []
    work = []
    for i, device in enumerate(devices[:meters]):
        lane = lane_list[i % lanes]
        counters[lane.index] += 1
        switches.append(Switch(lane.index, device.eui.hex, counters[lane.index]))
        xml = pki.entry(f"{lane.prefix}-xml-sign")
        key_pem = xml.private_key_pem
        assert key_pem is not None and device.mpxn is not None
        work.append(
            (
                lane.user_hex,
                device.eui.hex,
                counters[lane.index],
                device.mpxn,
                *(
                    pki.entry(f"{lane.prefix}-{s}").certificate.der
                    for s in ("ds", "ka", "ka-topup")
                ),
                org_ca,
                key_pem,
                xml.certificate.der,
            )
        )
    chunks = [work[i : i + 250] for i in range(0, len(work), 250)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        bodies = [b for chunk in pool.map(_sign_batch, chunks) for b in chunk]
    for switch, body in zip(switches, bodies, strict=True):
        switch.body = body
    timings["sign requests"] = time.perf_counter() - t
    return Plan(
        directory,
        sandbox.store_url,
        lane_list,
        switches[:lanes],
        switches[lanes : lanes + throughput],
        switches[lanes + throughput :],
        timings,
    )


# -- the floor: one switch's crypto and XML work, in process --------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    micros: float
    in_floor: bool


def floor_stages(plan: Plan, xsd_dir: Path) -> list[tuple[str, Callable[[], object], bool]]:
    """One switch's work in process as named stages (name, callable, in the floor)."""
    from openecos.cos.checks import CheckConfig, CheckInputs, check_request
    from openecos.cos.command import build_cos_command
    from openecos.cos.matching import read_device_message, verify_device_message
    from openecos.cos.outcomes import DccAlertDue, derive_outcome
    from openecos.cos.routing import route
    from openecos.device import DerivedDeviceKeys, MeterProfile, handle
    from openecos.duis import (
        DuisSchema,
        RequestId,
        ResponseCode,
        build_acknowledgement,
        build_dcc_alert,
        build_service_response,
        check_signer_binding,
        issuer_of,
        parse_document,
        read_update_security_credentials_cos,
        receive_update_security_credentials_cos,
        verify_signature,
    )
    from openecos.eui import Eui64
    from openecos.gbcs import decode_frame, decode_payload
    from openecos.gbcs.codes import KeyUsage
    from openecos.keys import open_keystore
    from openecos.sandbox import read_manifest
    from openecos.service import ServiceTrust, inventory_commissioner, resolve_service_keys
    from openecos.smki import SmkiCertificate
    from openecos.store import Store

    manifest = read_manifest(plan.directory)
    pki_dir = plan.directory / manifest.pki
    schema = DuisSchema.load(xsd_dir)
    trust = ServiceTrust.from_test_pki(pki_dir)
    keys = resolve_service_keys(open_keystore([pki_dir]), dcc_names(manifest))
    profile = MeterProfile(
        keys=DerivedDeviceKeys(manifest.device_key_seed), policies=trust.policies
    )
    switch = plan.throughput[0] if plan.throughput else plan.warmup[0]
    data = switch.body
    device_eui = Eui64.parse(switch.device_hex)
    now = datetime.now(UTC)

    with Store.open(plan.store_url) as store:
        root = parse_document(data)
        request = read_update_security_credentials_cos(root)
        originator = request.header.request_id.originator
        known = {}
        for c in store.certificates.by_subject(originator, None, KeyUsage.DIGITAL_SIGNATURE):
            known[(issuer_of(c.der), c.serial)] = c.der
        device = store.devices.get(device_eui)
        inputs = CheckInputs(
            request=request,
            signer=originator,
            user=store.parties.get_user(originator),
            device=device,
            registered_supplier=store.registrations.registered_supplier(
                request.body.import_mpxn, now
            ),
            in_flight_command=None,
            now=now,
            trust_anchors=trust.anchors,
            config=CheckConfig(accepted_policies=trust.policies),
        )
        with store.transaction() as tx:
            meter = inventory_commissioner(profile)(tx, device_eui)
            cells = tx.devices.trust_anchors(device_eui)
        ka = store.certificates.by_subject(device_eui, None, KeyUsage.KEY_AGREEMENT)[0].der
        ds = store.certificates.by_subject(device_eui, None, KeyUsage.DIGITAL_SIGNATURE)[0].der
    assert meter is not None
    device_ka = SmkiCertificate.from_der(ka).public_key
    party = route(device, keys.parties)
    signer = keys.signer_of(party)
    checked = check_request(inputs)
    counter = 1 << 40

    def resolve(issuer: str, serial: int) -> bytes | None:
        return known.get((issuer, serial))

    def receive() -> object:
        return receive_update_security_credentials_cos(
            data, schema=schema, resolve_certificate=resolve
        )

    received = receive_update_security_credentials_cos(
        data, schema=schema, resolve_certificate=resolve
    )
    certificate = received.signature.certificate_der
    assert certificate is not None

    def binding() -> object:
        return check_signer_binding(
            certificate,
            originator,
            at=now,
            anchors=trust.anchors,
            policies=trust.policies,
            intermediates=trust.intermediates,
        )

    def build() -> bytes:
        return build_cos_command(
            checked,
            party=party,
            originator_counter=counter,
            signer=signer,
            acb_key_agreement=keys.acb_key_agreement,
            device_key_agreement_key=device_ka,
        )

    command = build()

    def meter_step() -> bytes:
        transition = handle(meter, command, now, profile)
        assert transition.rejection is None, transition.rejection
        return transition.outputs[0].message

    answer = meter_step()

    def response_verify() -> object:
        message = read_device_message(answer, keys.parties)
        verify_device_message(message, ds)
        return message

    message = response_verify()
    sent = decode_payload(decode_frame(command))
    request_id = RequestId(originator, device_eui, switch.counter)

    def replies() -> None:
        build_acknowledgement(
            request_id=request_id, response_code=ResponseCode.I99, at=now, signer=keys.dcc_signing
        )
        outcome = derive_outcome(message, sent, request_id, current_cells=cells)  # type: ignore[arg-type]
        for due in outcome.due:
            if isinstance(due, DccAlertDue):
                build_dcc_alert(
                    alert_code=due.alert_code,
                    alert=due.alert,
                    at=now,
                    signer=keys.dcc_signing,
                    request_id=due.request_id,
                )
            else:
                build_service_response(
                    request_id=due.request_id,
                    gbcs_payload=due.gbcs_payload,
                    at=now,
                    signer=keys.dcc_signing,
                    response_code=due.response_code,
                )  # type: ignore[union-attr]

    root = parse_document(data)
    stages: list[tuple[str, Callable[[], object], bool]] = [
        ("parse (hardened lxml)", lambda: parse_document(data), True),
        ("XSD validation (DUIS V5.4)", lambda: schema.validate(root), True),
        ("XMLDSig verify (C14N x2, ECDSA)", lambda: verify_signature(root, resolve), True),
        ("read typed 6.23", lambda: read_update_security_credentials_cos(root), True),
        ("signer binding (SMKI path)", binding, False),
        ("cos checks", lambda: check_request(inputs), False),
        ("CS02b 0x0107 build + sign + MAC", build, True),
        ("meter: verify + MAC + execute + sign", meter_step, True),
        ("response verify (decode + ECDSA)", response_verify, True),
        ("DUIS ack + I0 + 2 alerts, built and signed", replies, False),
    ]
    stages.append(("(receive_update_security_credentials_cos, whole)", receive, False))
    return stages


def measure_floor(plan: Plan, xsd_dir: Path, *, n: int) -> list[Stage]:
    """Per-stage best-of timings of one switch's work, on one core (see the module doc)."""
    out = []
    with pinned_to_one_core():
        for name, fn, in_floor in floor_stages(plan, xsd_dir):
            out.append(Stage(name, best_rate(name, fn, n=n, repeats=5).micros, in_floor))
    return out


@contextlib.contextmanager
def pinned_to_one_core() -> Iterator[None]:
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(before)[-1]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def dcc_names(manifest: Any) -> Any:
    from openecos.service.identities import DccKeyNames

    dcc = manifest.dcc
    return DccKeyNames(
        access_control_broker=dcc.access_control_broker,
        tcos_party=dcc.tcos_party,
        ecos_party=dcc.ecos_party,
        acb_ka=dcc.acb_ka,
        tcos_ds=dcc.tcos_ds,
        ecos_ds=dcc.ecos_ds,
        xml_signing=dcc.xml_signing,
    )


# -- the service, in processes of its own ---------------------------------------------------------


@contextlib.contextmanager
def profiled(out: str | None, role: str) -> Iterator[None]:
    """With ``out``: cProfile and SQL statements counted by kind, written at exit."""
    if out is None:
        yield
        return
    import cProfile
    import pstats
    import threading
    from collections import Counter

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements: Counter[str] = Counter()
    lock = threading.Lock()

    def count(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        words = statement.split(None, 3)
        kind = " ".join(words[:3]) if words and words[0] in ("INSERT", "UPDATE") else words[0]
        if words and words[0] in ("SELECT", "DELETE"):
            found = re.search(r"\bFROM (\w+)", statement)
            kind += f" {found.group(1) if found else ''}"
        with lock:
            statements[kind] += 1

    event.listen(Engine, "before_cursor_execute", count)
    profiles: list[cProfile.Profile] = []

    def start_thread_profile(*_args: Any) -> None:
        # Called once in each new thread (threading.setprofile): profile that thread too.
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()

    main = cProfile.Profile()
    profiles.append(main)
    threading.setprofile(start_thread_profile)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        base = f"{out}.{role}-{os.getpid()}"
        with open(f"{base}.txt", "w") as f:
            f.write(f"statements {sum(statements.values())}\n")
            for kind, n in statements.most_common():
                f.write(f"  {n:8d}  {kind}\n")
            stats = pstats.Stats(main, stream=f)
            for profile in profiles[1:]:
                with contextlib.suppress(Exception):
                    stats.add(profile)
            stats.sort_stats("tottime").print_stats(45)
            stats.sort_stats("cumulative").print_stats(70)


def serve_main(args: argparse.Namespace) -> None:
    """One service process: HTTP API (and workers unless ``--no-workers``), or workers only."""
    with profiled(args.profile, args.role):
        _serve(args)


def _serve(args: argparse.Namespace) -> None:
    from openecos.api import serve
    from openecos.sandbox import read_manifest
    from openecos.service import DEFAULT_DEVICE_KEY_SEED, ServiceConfig, open_runtime

    directory = Path(args.sandbox)
    manifest = read_manifest(directory)
    config = ServiceConfig(
        store_url=args.store,
        pki_dir=directory / manifest.pki,
        xsd_dir=Path(args.xsd),
        names=dcc_names(manifest),
        device_key_seed=manifest.device_key_seed or DEFAULT_DEVICE_KEY_SEED,
        run_workers=args.role in ("all", "workers"),
        worker_id=f"bench-{args.role}-{os.getpid()}",
    )
    runtime = open_runtime(config)
    if args.role == "workers":
        if args.nice:
            # Switches are asynchronous; acknowledgements are what a user waits for.
            os.nice(args.nice)
        runtime.start()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            signal.pause()
        finally:
            runtime.close()
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    if args.profile:
        # uvicorn re-raises the SIGTERM it caught once it has stopped: exit through the
        # profiler's `finally` then, instead of dying of it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(runtime, sock=sock)
    finally:
        runtime.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


@dataclass
class Service:
    processes: list[subprocess.Popen[bytes]]
    base_url: str
    profiled: bool = False

    roles: list[str] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        """CPU time the service processes have used so far (Linux /proc; 0.0 elsewhere)."""
        return sum(self.cpu_by_role().values())

    def cpu_by_role(self) -> dict[str, float]:
        """CPU time so far per process role (api, workers, all)."""
        out: dict[str, float] = {}
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for i, p in enumerate(self.processes):
            role = self.roles[i] if i < len(self.roles) else "all"
            for pid in (_children(p.pid) if self.profiled else []) or [p.pid]:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                # Under py-spy the service is py-spy's child: stop it, and py-spy writes its file.
                for child in (_children(p.pid) if self.profiled else []) or [p.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_service(plan: Plan, args: argparse.Namespace) -> Service:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    base = [
        sys.executable,
        str(Path(__file__).resolve()),
        "serve",
        "--sandbox",
        str(plan.directory),
        "--store",
        plan.store_url,
        "--xsd",
        str(args.xsd),
        "--port",
        str(port),
    ]
    profiler: list[str] = []
    roles = (
        ["all"]
        if args.worker_processes == 0
        else ["api"] * args.api_processes + ["workers"] * args.worker_processes
    )
    if args.worker_processes == 0 and args.api_processes > 1:
        roles = ["all"] * args.api_processes
    processes = []
    for i, role in enumerate(roles):
        command = [*base, "--role", role]
        if args.profile:
            command += ["--profile", str(Path(args.profile).resolve())]
        if role == "workers" and args.worker_nice:
            command += ["--nice", str(args.worker_nice)]
        if args.py_spy:
            out = Path(f"{args.py_spy}.{i}-{role}.txt")
            profiler = [
                args.py_spy_bin,
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "-o",
                str(out),
                "--",
            ]
        processes.append(
            subprocess.Popen(
                [*profiler, *command],
                stderr=None if args.verbose else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        )
    service = Service(processes, f"http://127.0.0.1:{port}", bool(args.py_spy), list(roles))
    import httpx

    deadline = time.monotonic() + 120
    with httpx.Client(base_url=service.base_url, timeout=5) as client:
        while True:
            if any(p.poll() is not None for p in processes):
                service.stop()
                raise SystemExit("a service process exited at start-up")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code == 200:
                    break
            if time.monotonic() > deadline:
                service.stop()
                raise SystemExit("the service did not answer within 120 s")
            time.sleep(0.1)
    return service


# -- the driver: lanes over one HTTP connection pool ----------------------------------------------


@dataclass
class PhaseResult:
    name: str
    sent: int
    codes: dict[str, int]
    latencies: list[float]
    elapsed: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _RawConnection:
    """One keep-alive HTTP/1.1 connection, written and read by hand.

    The load generator must cost far less than the service it loads: on this
    machine httpx manages about 700 requests/s across 64 connections against a
    server that does nothing, this about 5,000 (both measured against a bare
    ASGI app). It speaks just enough HTTP/1.1 for ``POST /duis`` to uvicorn:
    ``Content-Length`` bodies, no chunking, the connection kept open.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self._host}\r\n"
            f"content-type: application/xml\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        self._writer.write(head + body)
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _HttpxConnection:
    """One httpx client (one connection) per lane: a shared pool of 64 is slower still."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=120, limits=httpx.Limits(max_connections=1)
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        answer = await self._client.post(
            path, content=body, headers={"content-type": "application/xml"}
        )
        return answer.status_code, answer.content

    async def close(self) -> None:
        await self._client.aclose()


async def _drive(
    base_url: str, lanes: list[list[tuple[float | None, Switch]]], client: str
) -> tuple[list[tuple[float, bytes]], float]:
    results: list[tuple[float, bytes]] = []
    transport_errors: list[str] = []
    host, port = base_url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    def connect() -> _RawConnection | _HttpxConnection:
        return _RawConnection(host, int(port)) if client == "raw" else _HttpxConnection(base_url)

    async def lane(items: list[tuple[float | None, Switch]]) -> None:
        connection = connect()
        try:
            for at, switch in items:
                if at is None:
                    scheduled = loop.time()
                else:
                    scheduled = start + at
                    delay = scheduled - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                try:
                    status, content = await connection.post("/duis", switch.body)
                except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                    # The connection failed under the request. Sent again once on a new
                    # one: if the first had been recorded, the second is refused (counter
                    # not increasing) and the run is reported incorrect.
                    transport_errors.append(repr(exc))
                    await connection.close()
                    connection = connect()
                    status, content = await connection.post("/duis", switch.body)
                done = loop.time()
                if status != 200:
                    results.append((done - scheduled, f"HTTP {status}".encode()))
                    continue
                found = _RESPONSE_CODE.search(content)
                results.append((done - scheduled, found.group(1) if found else b"?"))
        finally:
            await connection.close()

    await asyncio.gather(*(lane(items) for items in lanes if items))
    if transport_errors:
        print(f"  ({len(transport_errors)} requests sent again after {transport_errors[0]})")
    return results, loop.time() - start


def run_phase(
    name: str,
    base_url: str,
    switches: list[Switch],
    n_lanes: int,
    rate: float | None,
    client: str = "raw",
) -> PhaseResult:
    """Closed loop (``rate`` None: each lane sends its next request on the ack) or open loop."""
    lanes: list[list[tuple[float | None, Switch]]] = [[] for _ in range(n_lanes)]
    for i, switch in enumerate(switches):
        lanes[switch.lane].append((None if rate is None else i / rate, switch))
    cpu = _cpu()
    results, elapsed = asyncio.run(_drive(base_url, lanes, client))
    codes: dict[str, int] = {}
    for _, code in results:
        codes[code.decode()] = codes.get(code.decode(), 0) + 1
    return PhaseResult(
        name, len(results), codes, [lat for lat, _ in results], elapsed, _cpu() - cpu
    )


class Progress:
    """Polls the store for completed requests (a read-only connection of its own)."""

    def __init__(self, store_url: str) -> None:
        from openecos.store.engine import open_engine

        self.engine = open_engine(store_url)

    def completed(self) -> int:
        from sqlalchemy import func, select

        from openecos.store import RequestStatus, read_transaction, schema

        r = schema.requests
        with read_transaction(self.engine) as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(r).where(r.c.status == RequestStatus.COMPLETED)
                ).scalar_one()
            )

    def wait_for(self, count: int, *, timeout: float, since: float) -> float | None:
        """Seconds from ``since`` (perf_counter) until ``count`` requests are Completed."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.completed() >= count:
                return time.perf_counter() - since
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self.engine.dispose()


# -- correctness at the end ------------------------------------------------------------------------


def validate(plan: Plan, phases: list[PhaseResult]) -> list[str]:
    """What went wrong, if anything (empty: every switch is proven complete)."""
    from sqlalchemy import func, select

    from openecos.device import SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, DerivedDeviceKeys, MeterProfile
    from openecos.duis import RequestId
    from openecos.eui import Eui64
    from openecos.gbcs.codes import KeyUsage, RemotePartyRole
    from openecos.sandbox import read_manifest
    from openecos.service import ServiceTrust, SimulatedEstate
    from openecos.store import (
        CommandStatus,
        OutboxKind,
        RequestStatus,
        Store,
        read_transaction,
        schema,
    )

    problems: list[str] = []
    for phase in phases:
        other = {c: n for c, n in phase.codes.items() if c != "I99"}
        if other:
            problems.append(f"{phase.name}: acknowledgements other than I99: {other}")
    switches = plan.all
    ids = {
        RequestId(
            Eui64.parse(plan.lanes[s.lane].user_hex), Eui64.parse(s.device_hex), s.counter
        ).duis: s
        for s in switches
    }
    manifest = read_manifest(plan.directory)
    trust = ServiceTrust.from_test_pki(plan.directory / manifest.pki)
    profile = MeterProfile(
        keys=DerivedDeviceKeys(manifest.device_key_seed), policies=trust.policies
    )
    with Store.open(plan.store_url) as store:
        r, o, c = schema.requests, schema.outbox, schema.commands
        with read_transaction(store.engine) as conn:
            rows = conn.execute(select(r.c.request_id, r.c.status, r.c.response_code)).all()
            responses = dict(
                conn.execute(
                    select(o.c.request_id, func.count())
                    .where(o.c.kind == OutboxKind.RESPONSE)
                    .group_by(o.c.request_id)
                ).all()
            )
            commands = dict(
                conn.execute(
                    select(c.c.request_id, func.count())
                    .where(c.c.status == CommandStatus.SUCCEEDED)
                    .group_by(c.c.request_id)
                ).all()
            )
        by_id = {row.request_id: row for row in rows}
        missing = [rid for rid in ids if rid not in by_id]
        if missing:
            problems.append(f"{len(missing)} requests not recorded, e.g. {missing[0]}")
        bad = [
            rid
            for rid in ids
            if rid in by_id
            and (
                by_id[rid].status is not RequestStatus.COMPLETED or by_id[rid].response_code != "I0"
            )
        ]
        if bad:
            problems.append(
                f"{len(bad)} requests not Completed with I0, e.g. {bad[0]}: {by_id[bad[0]].status}"
            )
        no_i0 = [rid for rid in ids if responses.get(rid, 0) != 1]
        if no_i0:
            problems.append(f"{len(no_i0)} requests without exactly one response in the outbox")
        no_cmd = [rid for rid in ids if commands.get(rid, 0) != 1]
        if no_cmd:
            problems.append(f"{len(no_cmd)} requests without exactly one succeeded command")
        estate = SimulatedEstate(store, profile)
        wrong_meter = wrong_inventory = 0
        for switch in switches:
            device = Eui64.parse(switch.device_hex)
            gaining = Eui64.parse(plan.lanes[switch.lane].user_hex)
            state = estate.state(device)
            if (
                state is None
                or state.cell(SUPPLIER_DS_CELL).subject_unique_id != gaining
                or state.cell(SUPPLIER_KA_CELL).subject_unique_id != gaining
            ):
                wrong_meter += 1
            cells = store.devices.trust_anchors(device)
            if {
                a.subject_eui
                for a in cells
                if a.role is RemotePartyRole.SUPPLIER and a.key_usage is KeyUsage.DIGITAL_SIGNATURE
            } != {gaining}:
                wrong_inventory += 1
        if wrong_meter:
            problems.append(
                f"{wrong_meter} simulated meters do not hold the gaining supplier's DS and KA"
            )
        if wrong_inventory:
            problems.append(
                f"{wrong_inventory} inventory records do not show the gaining supplier's DS"
            )
    return problems


# -- main -----------------------------------------------------------------------------------------


def _postgres_schema(url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema on the PostgreSQL at ``url``; returns the URL that uses it and a dropper."""
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bench_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')

    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={name}"})
    return scoped.render_as_string(hide_password=False), drop


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _floor_report(stages: list[Stage]) -> tuple[float, float]:
    floor_us = sum(s.micros for s in stages if s.in_floor)
    full_us = sum(s.micros for s in stages[:-1])
    for s in stages:
        print(f"  {'*' if s.in_floor else ' '} {s.name:<48} {s.micros:8.1f} µs")
    for label, micros in (("floor (* stages)", floor_us), ("every stage", full_us)):
        print(f"    {label:<48} {micros:8.1f} µs = {1e6 / micros:5.0f} switches/s per core")
    return floor_us, full_us


def _phase_report(phase: PhaseResult, completed: str) -> None:
    p50, p99, worst = (phase.percentile(0.5), phase.percentile(0.99), max(phase.latencies))
    print(
        f"  acknowledgements  {phase.rate:7.0f} /s  p50 {_ms(p50)}  p99 {_ms(p99)}"
        f"  max {_ms(worst)}"
    )
    print(f"  switches completed {completed}")
    print(f"  client CPU        {phase.client_cpu / phase.elapsed * 100:7.0f} % of a core")


def bench_main(args: argparse.Namespace) -> int:
    if not (Path(args.xsd) / "DUIS Schema V5.4.xsd").is_file():
        print(f"DUIS XSD not found in {args.xsd} (set OPENECOS_DUIS_XSD)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="openecos-bench-", dir=args.workdir))
    cleanups: list[Callable[[], None]] = []
    store_url: str | None = None
    if args.store != "sqlite":
        store_url, drop = _postgres_schema(args.store)
        cleanups.append(drop)
    latency_count = int(args.rate * args.seconds)
    service: Service | None = None
    try:
        meters = args.lanes + args.switches + latency_count
        print(f"setting up: {args.lanes} lanes, {meters} meters in {workdir}")
        plan = make_plan(
            workdir / "sandbox",
            store_url,
            lanes=args.lanes,
            throughput=args.switches,
            latency=latency_count,
        )
        for step, seconds in plan.setup_seconds.items():
            print(f"  {step:<22} {seconds:6.1f} s")

        print("\nfloor: one switch's crypto and XML work in process, one core (best of 5 runs)")
        floor_us, full_us = _floor_report(measure_floor(plan, Path(args.xsd), n=args.floor_n))
        floor_rate = 1e6 / floor_us

        service = start_service(plan, args)
        progress = Progress(plan.store_url)
        layout = f"{args.api_processes} API process(es)" + (
            f" + {args.worker_processes} worker process(es)"
            if args.worker_processes
            else ", workers inside"
        )
        kind = "SQLite (WAL, synchronous=FULL)" if store_url is None else "PostgreSQL"
        print(f"\nservice: {layout}; {kind}; {args.lanes} lanes, {args.client} client")

        phases = [
            run_phase("warm-up", service.base_url, plan.warmup, args.lanes, None, args.client)
        ]
        if progress.wait_for(len(plan.warmup), timeout=args.drain_timeout, since=0) is None:
            print("  warm-up switches did not complete", file=sys.stderr)

        base = progress.completed()
        cpu0 = service.cpu_seconds()
        roles0 = service.cpu_by_role()
        t0 = time.perf_counter()
        tp = run_phase(
            "throughput", service.base_url, plan.throughput, args.lanes, None, args.client
        )
        completed_in = progress.wait_for(
            base + len(plan.throughput), timeout=args.drain_timeout, since=t0
        )
        service_cpu = service.cpu_seconds() - cpu0
        by_role = {r: c - roles0.get(r, 0.0) for r, c in service.cpu_by_role().items()}
        phases.append(tp)
        completion_rate = None if completed_in is None else len(plan.throughput) / completed_in
        print(f"\nthroughput, closed loop: {len(plan.throughput)} switches, one per lane in flight")
        _phase_report(
            tp,
            f"{completion_rate:6.0f} /s  (last I0 in its outbox {completed_in:.1f} s after "
            "the first send)"
            if completed_in is not None and completion_rate is not None
            else f"not all within {args.drain_timeout} s",
        )
        per_switch_ms = service_cpu / len(plan.throughput) * 1000
        print(
            f"  service CPU       {per_switch_ms:7.2f} ms per switch (all service processes, "
            f"first send to last I0; floor {floor_us / 1000:.2f}, every stage "
            f"{full_us / 1000:.2f})"
        )
        for role, seconds in sorted(by_role.items()):
            print(
                f"    {role:<8} process(es) {seconds / len(plan.throughput) * 1000:7.2f} ms per "
                f"switch, {seconds / (completed_in or tp.elapsed) * 100:4.0f} % of a core"
            )

        lat = None
        if plan.latency:
            base = progress.completed()
            t0 = time.perf_counter()
            lat = run_phase(
                "latency", service.base_url, plan.latency, args.lanes, args.rate, args.client
            )
            during = progress.completed() - base
            drained_in = progress.wait_for(
                base + len(plan.latency), timeout=args.drain_timeout, since=t0
            )
            phases.append(lat)
            print(f"\nlatency, open loop at {args.rate:.0f} requests/s for {args.seconds:.0f} s")
            drained = "-" if drained_in is None else f"{drained_in:.1f} s"
            _phase_report(
                lat,
                f"{during / lat.elapsed:6.0f} /s  while offered; all done {drained} after the "
                "first send",
            )
        progress.close()
        service.stop()
        service = None

        print("\nratios to the single-core floor of this run")
        print(f"  floor                {floor_rate:7.0f} switches/s per core")
        if completion_rate is not None:
            print(f"  completed switches   {completion_rate / floor_rate:7.2f} x")
        print(f"  acknowledgements     {tp.rate / floor_rate:7.2f} x")
        met_rate = completion_rate is not None and completion_rate >= 1500
        met_p99 = lat is not None and lat.percentile(0.99) < 0.05
        print(f"  target >= 1,500 switches/s end to end: {'met' if met_rate else 'NOT met'}")
        print(f"  target p99 ack < 50 ms at {args.rate:.0f}/s: {'met' if met_p99 else 'NOT met'}")

        problems = validate(plan, phases)
        if problems:
            print("\nINCORRECT:")
            for p in problems:
                print(f"  {p}")
            return 1
        print(
            f"\ncorrect: all {len(plan.all)} requests acknowledged I99 and completed I0, one I0 "
            "response each in the gaining supplier's outbox, every meter and inventory record "
            "holding the gaining supplier's certificates"
        )
        return 0
    finally:
        if service is not None:
            service.stop()
        for cleanup in cleanups:
            with contextlib.suppress(Exception):
                cleanup()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode")
    serve = sub.add_parser("serve", help="(internal) one service process")
    serve.add_argument("--sandbox", required=True)
    serve.add_argument("--store", required=True)
    serve.add_argument("--xsd", required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--role", choices=("all", "api", "workers"), default="all")
    serve.add_argument("--profile", default=None)
    serve.add_argument("--nice", type=int, default=0)
    parser.add_argument(
        "--store",
        default="sqlite",
        help="sqlite (a file in the work dir) or a PostgreSQL URL (used in a fresh schema)",
    )
    parser.add_argument("--xsd", default=str(DEFAULT_XSD))
    parser.add_argument(
        "--lanes", type=int, default=64, help="gaining suppliers, each with one request in flight"
    )
    parser.add_argument(
        "--switches", type=int, default=3000, help="switches in the closed-loop throughput phase"
    )
    parser.add_argument(
        "--rate", type=float, default=500.0, help="offered load of the latency phase (requests/s)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: hand-written keep-alive HTTP/1.1 (cheap); httpx: one AsyncClient per lane",
    )
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="0: workers run inside the API process, as `openecos serve`",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="run worker processes at this nice value (below the API's CPU priority)",
    )
    parser.add_argument("--floor-n", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="show the service processes' stderr")
    parser.add_argument(
        "--py-spy",
        default=None,
        help="profile each service process with py-spy into PATH.<n>-<role>.txt",
    )
    parser.add_argument("--py-spy-bin", default="py-spy")
    parser.add_argument(
        "--profile",
        default=None,
        help="cProfile each service process and count its SQL statements (PATH.<role>-<pid>.txt)",
    )
    args = parser.parse_args()
    if args.mode == "serve":
        serve_main(args)
        return 0
    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
