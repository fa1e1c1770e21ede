"""Migration throughput: 0x0106 end to end with full cryptography and durable state (issue 4).

Subject. N eligible meters (loaded with :mod:`openecos.store.bulk`, device
certificates in the inventory) are migrated by two processes, one per core:

- the *service* (this process) works in batches, each step durable in
  PostgreSQL before the next: claim eligible ``migration_meters`` rows
  (``FOR UPDATE SKIP LOCKED``) and read the meters' device certificates;
  reserve a block of TCoS counters (committed on its own); parse the
  certificates and build each 0x0106 (:func:`openecos.migration.build_migration_command`:
  TCoS signature, ACB GMAC by ECDH with the meter's KA key); record the
  commands and IN_FLIGHT in one transaction; send the batch; classify each
  answer (:func:`openecos.migration.classify_response`: the meter's signature
  with its DS key, the outcome names the ECoS certificate) and record
  MIGRATED, the command's answer and the inventory's ECOS flag in one
  transaction. The EMRR counter triggers run in the same transactions.
- the *meters* (a child process): a ``Fleet`` of N simulated meters
  (:mod:`openecos.device`). Each meter checks the MAC, the TCoS signature,
  the seq number, and the ECoS certificate's path to its root anchor with
  its own two ECDSA verifications: the fleet-wide path-verdict cache is
  turned off here, because a real meter remembers nothing of its
  neighbours' checks. It signs its response with its DS key.

Batches are pipelined (``--depth`` in flight), so the two processes work
at once. This is the driver loop of the engine's steps (claim, reserve,
build, record, send, classify, apply), on the same pure functions and
tables; ``openecos.service.migration_engine`` runs the same steps with its
lifecycle values and leases.

Floor, measured in the same run on one core (before and after the subject):
per meter, with ``cryptography`` directly: TCoS ECDSA sign + ACB ECDH and
GMAC + meter ECDH and GMAC + meter ECDSA verify of the command + two ECDSA
verifications of the certificate path (ECoS certificate by the organisation
CA, the CA by the root) + meter ECDSA sign of the response + service ECDSA
verify of the response. The floor on two cores is twice the one-core rate
(all of it divides perfectly between the two sides).

Command::

    .venv/bin/python bench/migration.py --meters 20000
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import text
from sqlalchemy.engine import make_url

from openecos.device import (
    CertificateCache,
    DeviceKey,
    MeterProfile,
    commission_sandbox_meter,
    sandbox_device_certificates,
)
from openecos.device.keys import DerivedDeviceKeys
from openecos.device.state import MeterState
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.migration import (
    EcosCredential,
    MigrationStatus,
    SentMigration,
    build_migration_command,
    classify_response,
)
from openecos.network import Fleet
from openecos.smki import SmkiCertificate, TestPki, sandbox_pki
from openecos.smki.sandbox import TCOS_PARTY
from openecos.smki.testpki_files import load_test_pki, write_test_pki
from openecos.store import Store, emrr
from openecos.store.bulk import EstateSpec, add_participants, load_estate
from openecos.store.records import normalise_issuer_name
from openecos.store.types import U64_BIAS

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SEED = b"openecos bench meters"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
FIRST = 0x00DB_0000_0000_0000
_PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the floor ----------------------------------------------------------------------------


@dataclass
class Floor:
    """One meter's cryptography with ``cryptography`` directly (module docstring)."""

    pki: TestPki
    command: bytes
    response: bytes

    def __post_init__(self) -> None:
        keys = DerivedDeviceKeys(SEED)
        device = Eui64.from_int(FIRST)
        self.tcos = self.pki.entry("tcos-ds").private_key()
        self.tcos_pub = self.tcos.public_key()
        self.acb = self.pki.entry("acb-ka").private_key()
        self.acb_pub = self.acb.public_key()
        self.meter_ka = keys.key(device, KeyUsage.KEY_AGREEMENT)._key
        self.meter_ka_pub = self.meter_ka.public_key()
        self.meter_ds = keys.key(device, KeyUsage.DIGITAL_SIGNATURE)._key
        self.meter_ds_pub = self.meter_ds.public_key()
        leaf = x509.load_der_x509_certificate(self.pki.entry("ecos-ds").certificate.der)
        ca = x509.load_der_x509_certificate(self.pki.organisation_path[0].der)
        root = x509.load_der_x509_certificate(self.pki.root.certificate.der)
        self.links = [
            (ca.public_key(), leaf.signature, leaf.tbs_certificate_bytes),
            (root.public_key(), ca.signature, ca.tbs_certificate_bytes),
        ]
        self.command_digest = hashlib.sha256(self.command[:-64]).digest()
        self.command_sig = self.tcos.sign(self.command_digest, _PREHASHED)
        self.response_digest = hashlib.sha256(self.response[:-64]).digest()
        self.response_sig = self.meter_ds.sign(self.response_digest, _PREHASHED)

    def _gmac(self, secret: bytes) -> bytes:
        key = hashlib.sha256(b"\x00\x00\x00\x01" + secret + b"other info").digest()[:16]
        encryptor = Cipher(algorithms.AES(key), modes.GCM(b"\x90" * 12)).encryptor()
        encryptor.authenticate_additional_data(self.command)
        encryptor.finalize()
        return encryptor.tag[:12]

    def one_meter(self) -> None:
        ecdsa = ec.ECDSA(hashes.SHA256())
        # Service: TCoS signature and ACB MAC.
        self.tcos.sign(self.command_digest, _PREHASHED)
        self._gmac(self.acb.exchange(ec.ECDH(), self.meter_ka_pub))
        # Meter: MAC, signature, certificate path; its response signature.
        self._gmac(self.meter_ka.exchange(ec.ECDH(), self.acb_pub))
        self.tcos_pub.verify(self.command_sig, self.command_digest, _PREHASHED)
        for public_key, signature, tbs in self.links:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(signature, tbs, ecdsa)
        self.meter_ds.sign(self.response_digest, _PREHASHED)
        # Service: the response's signature.
        self.meter_ds_pub.verify(self.response_sig, self.response_digest, _PREHASHED)


def floor_rate(floor: Floor, n: int = 300, repeats: int = 7) -> float:
    """Best-of meters per second on one core."""
    for _ in range(20):
        floor.one_meter()
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(n):
                floor.one_meter()
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    return n / best


# --- the meters' process -----------------------------------------------------------------


class _NoVerdicts(CertificateCache):
    """Interns certificates as usual, but remembers no path verdict: every meter checks."""

    __slots__ = ()

    def verdict(self, key: Hashable) -> object | None:
        return None


def meter_profile(pki: TestPki, *, shared_verdicts: bool) -> MeterProfile:
    cache = CertificateCache() if shared_verdicts else _NoVerdicts()
    return MeterProfile(keys=DerivedDeviceKeys(SEED), policies=pki.policies, certificates=cache)


def meters_main(pipe: Pipe, pki_dir: str, n: int, shared_verdicts: bool, core: int | None) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    pki = load_test_pki(Path(pki_dir))
    profile = meter_profile(pki, shared_verdicts=shared_verdicts)
    first = commission_sandbox_meter(pki, Eui64.from_int(FIRST), profile)
    fleet = Fleet(profile)
    for i in range(n):
        fleet.add(MeterState(Eui64.from_int(FIRST + i), first.cells, first.seq_numbers))
    pipe.send("ready")
    busy = 0.0
    rejected = 0
    while True:
        batch = pipe.recv()
        if batch is None:
            break
        start = time.perf_counter()
        answers: list[tuple[bytes, bytes | None]] = []
        for device_bytes, command in batch:
            transition = fleet.handle(Eui64(device_bytes), command, NOW)
            if transition.rejection is not None:
                rejected += 1
            answers.append(
                (device_bytes, transition.outputs[0].message if transition.outputs else None)
            )
        busy += time.perf_counter() - start
        pipe.send(answers)
    pipe.send({"busy": busy, "rejected": rejected})


# --- setup -----------------------------------------------------------------------------------


def _mint(job: tuple[str, range]) -> list[tuple[str, int, str, bytes]]:
    pki_dir, devices = job
    pki = load_test_pki(Path(pki_dir))
    keys = DerivedDeviceKeys(SEED)
    rows = []
    for i in devices:
        device = Eui64.from_int(FIRST + i)
        certs = sandbox_device_certificates(pki, device, keys)
        for usage, cert in (
            (KeyUsage.DIGITAL_SIGNATURE, certs.digital_signature),
            (KeyUsage.KEY_AGREEMENT, certs.key_agreement),
        ):
            rows.append((device.hex, cert.serial, usage.value, cert.der))
    return rows


def setup(url: str, pki_dir: str, n: int, *, processes: int = 2) -> Store:
    spec = EstateSpec(
        meters=n, suppliers=5, first_device=FIRST, mix=((MigrationStatus.ELIGIBLE, 1),)
    )
    store = Store.open(url)
    with store.engine.begin() as conn:
        emrr.install(conn)
    with store.transaction() as repos:
        add_participants(repos, spec)
    with store.engine.begin() as conn:
        load_estate(conn, spec)
    pki = load_test_pki(Path(pki_dir))
    issuer = str(pki.device_ca.certificate.subject)
    issuer_key = normalise_issuer_name(issuer)
    step = max(1, n // (processes * 8))
    chunks = [(pki_dir, range(i, min(n, i + step))) for i in range(0, n, step)]
    if processes == 1:
        minted = [row for chunk in chunks for row in _mint(chunk)]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            minted = [row for rows in pool.map(_mint, chunks) for row in rows]
    with store.engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        columns = "fingerprint, issuer_key, issuer_name, serial, subject_eui, key_usage, der"
        with cursor.copy(f"COPY certificates ({columns}) FROM STDIN") as copy:
            for device_hex, serial, usage, der in minted:
                fingerprint = hashlib.sha256(der).digest()
                copy.write_row(
                    (fingerprint, issuer_key, issuer, str(serial), device_hex, usage, der)
                )
        conn.exec_driver_sql(
            "INSERT INTO signing_counters (entity, last_counter) VALUES (%(e)s, %(c)s)",
            {"e": TCOS_PARTY.hex, "c": 1_000_000 - U64_BIAS},
        )
        conn.exec_driver_sql("ANALYZE certificates")
    return store


# --- the service side ----------------------------------------------------------------------


@dataclass
class Clocks:
    """Seconds the service spent in each step."""

    parts: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.parts[name] = self.parts.get(name, 0.0) + now - since
        return now


_CLAIM = text(
    """UPDATE migration_meters SET claimed_by = :w, lease_until = :l
       WHERE device IN (SELECT device FROM migration_meters
                        WHERE status = 'ELIGIBLE' AND claimed_by IS NULL
                        ORDER BY status, next_at LIMIT :b FOR UPDATE SKIP LOCKED)
       RETURNING device"""
)
_CERTS = text(
    "SELECT subject_eui, key_usage, der FROM certificates WHERE subject_eui = ANY(:d) "
    "AND key_usage IN ('keyAgreement', 'digitalSignature')"
)
_RESERVE = text(
    "UPDATE signing_counters SET last_counter = last_counter + :n WHERE entity = :e "
    "RETURNING last_counter"
)
_RECORD_COMMANDS = text(
    """INSERT INTO commands (signer, originator_counter, device, message_code,
                             credential_changing, payload, status, created_at, sent_at)
       SELECT :s, c, d, 262, true, p, 'Sent', :now, :now
       FROM unnest(CAST(:d AS text[]), CAST(:c AS bigint[]), CAST(:p AS bytea[])) AS u(d, c, p)"""
)
_IN_FLIGHT = text(
    """UPDATE migration_meters m SET status = 'IN_FLIGHT', reason = 'COMMAND_SENT',
              since = :now, next_at = :deadline, attempts = m.attempts + 1,
              total_attempts = m.total_attempts + 1, command_counter = u.c,
              claimed_by = NULL, lease_until = NULL
       FROM unnest(CAST(:d AS text[]), CAST(:c AS bigint[])) AS u(d, c) WHERE m.device = u.d"""
)
_ANSWERED = text(
    """UPDATE commands k SET status = u.s, response = u.r, answered_at = :now
       FROM unnest(CAST(:c AS bigint[]), CAST(:st AS text[]), CAST(:r AS bytea[])) AS u(c, s, r)
       WHERE k.signer = :signer AND k.originator_counter = u.c"""
)
_MIGRATED = text(
    """UPDATE migration_meters SET status = 'MIGRATED', reason = 'CONFIRMED_BY_RESPONSE',
              since = :now, next_at = NULL, credentials = 'ECOS'
       WHERE device = ANY(:d)"""
)
_RETRY = text(
    """UPDATE migration_meters SET status = 'RETRY_WAIT', reason = 'FAILED_RETRYABLE',
              since = :now, next_at = :later, error = 'REJECTED'
       WHERE device = ANY(:d)"""
)
_FLIP = text("UPDATE devices SET credential_state = 'ECOS' WHERE eui = ANY(:d)")


@dataclass
class Sent:
    device: Eui64
    counter: int
    ds_key: ec.EllipticCurvePublicKey


class Service:
    def __init__(
        self, store: Store, pki: TestPki, clocks: Clocks, *, device_keys: str = "smki"
    ) -> None:
        self.store = store
        self.fast_keys = device_keys == "x509"
        self.clocks = clocks
        self.signer = DeviceKey(pki.entry("tcos-ds").private_key())
        self.acb = DeviceKey(pki.entry("acb-ka").private_key())
        self.credential = EcosCredential.from_der(
            pki.entry("ecos-ds").certificate.der, tuple(c.der for c in pki.organisation_path)
        )
        self.sent: dict[bytes, Sent] = {}
        self.migrated = 0
        self.failed = 0

    def start_batch(self, size: int) -> list[tuple[bytes, bytes]]:
        t = time.perf_counter()
        with self.store.engine.begin() as conn:
            devices = list(
                conn.execute(
                    _CLAIM, {"w": "bench", "l": NOW + timedelta(seconds=30), "b": size}
                ).scalars()
            )
            certs = conn.execute(_CERTS, {"d": devices}).all() if devices else []
        t = self.clocks.add("claim + read certificates (1 txn)", t)
        if not devices:
            return []
        with self.store.engine.begin() as conn:
            last = int(
                conn.execute(_RESERVE, {"n": len(devices), "e": TCOS_PARTY.hex}).scalar_one()
            )
        last += U64_BIAS
        t = self.clocks.add("reserve counters (1 txn)", t)
        keys: dict[tuple[str, str], ec.EllipticCurvePublicKey] = {}
        for subject, usage, der in certs:
            if self.fast_keys:
                public_key = x509.load_der_x509_certificate(bytes(der)).public_key()
                assert isinstance(public_key, ec.EllipticCurvePublicKey)
                keys[(subject, usage)] = public_key
            else:
                keys[(subject, usage)] = SmkiCertificate.from_der(bytes(der)).public_key
        t = self.clocks.add("parse device certificates", t)
        batch: list[tuple[bytes, bytes]] = []
        counters: list[int] = []
        payloads: list[bytes] = []
        for offset, hex_device in enumerate(devices):
            device = Eui64(bytes.fromhex(hex_device))
            counter = last - len(devices) + 1 + offset
            command = build_migration_command(
                self.credential,
                tcos=TCOS_PARTY,
                device=device,
                originator_counter=counter,
                ecos_counter_floor=0,
                signer=self.signer,
                acb_key_agreement=self.acb,
                device_key_agreement_key=keys[(hex_device, "keyAgreement")],
            )
            self.sent[device.value] = Sent(device, counter, keys[(hex_device, "digitalSignature")])
            batch.append((device.value, command))
            counters.append(counter - U64_BIAS)
            payloads.append(command)
        t = self.clocks.add("build 0x0106 (sign, ECDH, GMAC)", t)
        with self.store.engine.begin() as conn:
            conn.execute(
                _RECORD_COMMANDS,
                {"s": TCOS_PARTY.hex, "now": NOW, "d": devices, "c": counters, "p": payloads},
            )
            conn.execute(
                _IN_FLIGHT,
                {"now": NOW, "deadline": NOW + timedelta(hours=1), "d": devices, "c": counters},
            )
        self.clocks.add("record commands + IN_FLIGHT (1 txn)", t)
        return batch

    def apply(self, answers: Sequence[tuple[bytes, bytes | None]]) -> None:
        t = time.perf_counter()
        ok: list[str] = []
        bad: list[str] = []
        counters: list[int] = []
        statuses: list[str] = []
        responses: list[bytes | None] = []
        for device_bytes, response in answers:
            sent = self.sent.pop(device_bytes)
            verdict = (
                classify_response(
                    response,
                    sent=SentMigration(
                        sent.device, TCOS_PARTY, sent.counter, self.credential.identity
                    ),
                    device_signing_key=sent.ds_key,
                )
                if response is not None
                else None
            )
            migrated = verdict is not None and verdict.migrated
            (ok if migrated else bad).append(sent.device.hex)
            counters.append(sent.counter - U64_BIAS)
            statuses.append("Succeeded" if migrated else "Failed")
            responses.append(response)
        t = self.clocks.add("classify answers (verify, decode)", t)
        with self.store.engine.begin() as conn:
            conn.execute(
                _ANSWERED,
                {
                    "now": NOW,
                    "c": counters,
                    "st": statuses,
                    "r": responses,
                    "signer": TCOS_PARTY.hex,
                },
            )
            if ok:
                conn.execute(_MIGRATED, {"now": NOW, "d": ok})
                conn.execute(_FLIP, {"d": ok})
            if bad:
                conn.execute(_RETRY, {"now": NOW, "later": NOW + timedelta(hours=1), "d": bad})
        self.clocks.add("record MIGRATED + answer + inventory (1 txn)", t)
        self.migrated += len(ok)
        self.failed += len(bad)


def service_main(
    url: str,
    pki_dir: str,
    pipe: Pipe,
    start: Any,
    results: Any,
    batch: int,
    depth: int,
    device_keys: str,
) -> None:
    """One service process driving one meters' process (several pairs share the store)."""
    store = Store.open(url, run_migrations=False)
    clocks = Clocks()
    service = Service(store, load_test_pki(Path(pki_dir)), clocks, device_keys=device_keys)
    assert pipe.recv() == "ready"
    start.wait()
    began = time.monotonic()
    in_flight = 0
    exhausted = False
    while True:
        while not exhausted and in_flight < depth:
            sent = service.start_batch(batch)
            if not sent:
                exhausted = True
                break
            pipe.send(sent)
            in_flight += 1
        if in_flight == 0:
            break
        t = time.perf_counter()
        answers = pipe.recv()
        clocks.add("waiting for meters", t)
        in_flight -= 1
        service.apply(answers)
    ended = time.monotonic()
    pipe.send(None)
    meter_stats = pipe.recv()
    store.close()
    results.put(
        {
            "began": began,
            "ended": ended,
            "migrated": service.migrated,
            "failed": service.failed,
            "clocks": clocks.parts,
            "meters": meter_stats,
        }
    )


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """``args.pairs`` service processes, each with a meters' process; returns totals."""
    ctx = multiprocessing.get_context("spawn")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = args.pin and args.pairs == 1 and len(cores) >= 2
    start = ctx.Event()
    results = ctx.Queue()
    processes = []
    for _ in range(args.pairs):
        ours, theirs = ctx.Pipe()
        meter_core = cores[1] if pin else None
        processes.append(
            ctx.Process(
                target=meters_main,
                args=(theirs, args.pki_dir, args.meters, args.shared_verdicts, meter_core),
            )
        )
        processes.append(
            ctx.Process(
                target=_pinned_service,
                args=(
                    cores[0] if pin else None,
                    *(url, args.pki_dir, ours, start, results),
                    *(args.batch, args.depth, args.device_keys),
                ),
            )
        )
    for process in processes:
        process.start()
    time.sleep(0.5)
    start.set()
    parts = [results.get() for _ in range(args.pairs)]
    for process in processes:
        process.join()
    clocks: dict[str, float] = {}
    for part in parts:
        for name, seconds in part["clocks"].items():
            clocks[name] = clocks.get(name, 0.0) + seconds
    return {
        "elapsed": max(p["ended"] for p in parts) - min(p["began"] for p in parts),
        "migrated": sum(p["migrated"] for p in parts),
        "failed": sum(p["failed"] for p in parts),
        "clocks": clocks,
        "meters": {
            "busy": sum(p["meters"]["busy"] for p in parts),
            "rejected": sum(p["meters"]["rejected"] for p in parts),
        },
    }


def _pinned_service(core: int | None, *args: Any) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    service_main(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--depth", type=int, default=3, help="batches in flight")
    parser.add_argument("--url", default=os.environ.get("OPENECOS_PG_URL", DEFAULT_URL))
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument(
        "--pairs", type=int, default=1, help="service processes, each with a meters' process"
    )
    parser.add_argument(
        "--device-keys",
        choices=("smki", "x509"),
        default="smki",
        help="read device public keys with openecos.smki (as the engine does) or cryptography",
    )
    parser.add_argument(
        "--shared-verdicts",
        action="store_true",
        help="let meters share path verdicts (the simulator's default; not a real meter)",
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    schema = f"bench_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_plain(args.url), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = (
        make_url(args.url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    pki_dir = tempfile.TemporaryDirectory(prefix="openecos-bench-pki-")
    write_test_pki(sandbox_pki(), Path(pki_dir.name))
    args.pki_dir = pki_dir.name
    try:
        t = time.perf_counter()
        store = setup(url, pki_dir.name, args.meters)
        print(
            f"setup: {args.meters:,} eligible meters, 2 device certificates each: "
            f"{time.perf_counter() - t:.1f} s"
        )
        pki = load_test_pki(Path(pki_dir.name))
        # A real command and response for the floor's byte counts.
        probe = Service(store, pki, Clocks())
        profile = meter_profile(pki, shared_verdicts=False)
        device = Eui64.from_int(FIRST)
        command = build_migration_command(
            probe.credential,
            tcos=TCOS_PARTY,
            device=device,
            originator_counter=5,
            ecos_counter_floor=0,
            signer=probe.signer,
            acb_key_agreement=probe.acb,
            device_key_agreement_key=profile.keys.public_key(device, KeyUsage.KEY_AGREEMENT),  # type: ignore[attr-defined]
        )
        from openecos.device import handle

        meter = commission_sandbox_meter(pki, device, profile)
        response = handle(meter, command, NOW, profile).outputs[0].message
        floor = Floor(pki, command, response)

        before = floor_rate(floor)
        result = run(url, args)
        after = floor_rate(floor)
        one_core = max(before, after)
        two_cores = 2 * one_core
        rate = result["migrated"] / result["elapsed"]
        with store.engine.connect() as conn:
            counts, _ = emrr.emrr_rows(conn)
            assert (counts, _) == emrr.recount_rows(conn)
        migrated = sum(r.count for r in counts if r.status is MigrationStatus.MIGRATED)

        pinned = args.pin and args.pairs == 1
        print(
            f"\nMigration, {args.meters:,} meters: {args.pairs} service and {args.pairs} meters'"
            f" process(es), {'pinned one a core' if pinned else 'unpinned'}; batches of "
            f"{args.batch}, {args.depth} in flight per service; device keys read by "
            f"{args.device_keys}; meters {'share' if args.shared_verdicts else 'do not share'}"
            " path verdicts"
        )
        print(
            f"  migrated {result['migrated']:,} (failed {result['failed']}, meter rejections "
            f"{result['meters']['rejected']}) in {result['elapsed']:.2f} s; EMRR counts "
            f"{migrated:,} migrated"
        )
        print(f"  subject: {rate:>10,.0f} meters/s   {1e6 / rate:>8.1f} µs/meter")
        print(
            f"  floor, one core: {one_core:>6,.0f} meters/s   {1e6 / one_core:>8.1f} µs/meter"
            f"   (before {before:,.0f}, after {after:,.0f})"
        )
        print(f"  floor, two cores: {two_cores:>5,.0f} meters/s")
        print(
            f"  ratio to the two-core floor: {rate / two_cores:.0%}"
            "   (targets: ≥ 3,000/s and ≥ 50%)"
        )
        n = max(1, result["migrated"])
        print("\nWhere the time goes (µs per meter, summed over processes; wall-clock inside each)")
        print(f"  meters' process, handling commands: {result['meters']['busy'] / n * 1e6:>8.1f}")
        for name, seconds in result["clocks"].items():
            print(f"  service: {name:<48} {seconds / n * 1e6:>8.1f}")
        store.close()
    finally:
        pki_dir.cleanup()
        if not args.keep:
            with psycopg.connect(_plain(args.url), autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
