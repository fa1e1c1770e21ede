"""A store with N meters for the migration engine tests, a virtual clock, and the engine.

Suppliers A (party ``A``, MPID AAAA) and B (party ``B``, MPID BBBB) are
registered for alternate meters. Meters are ESME ``OPENECOS``/``SIM-1``
firmware ``1.0`` unless the test says otherwise.

Two ways to fill it. ``full`` (the default): each meter has its own DS and KA
device certificates in the store and every trust-anchor cell in the
inventory, exactly as the sandbox makes them, and the engine finds keys and
commissions simulated meters the production way. ``fast`` (the big runs):
rows are bulk-inserted, the inventory holds only each meter's transitionalCoS
cell, device public keys come from the same derived keys the certificates
would carry, and simulated meters are commissioned from the sandbox cells
directly: the crypto on both sides (TCoS signature, ACB MAC, the meter's
checks and signed answer, the engine's verification) is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert

from openecos.device import (
    AnchorCertificate,
    DerivedDeviceKeys,
    MeterProfile,
    MeterState,
    commission_meter,
    sandbox_cells,
)
from openecos.device.commissioning import sandbox_device_certificates
from openecos.duis import issuer_of
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.keys import open_keystore
from openecos.migration import ApprovedModel, ApprovedModels, MigrationStatus, RunEvent, may_start
from openecos.service import DEFAULT_DEVICE_KEY_SEED, SimulatedEstate, encode_meter
from openecos.service.identities import DccKeyNames, ServiceKeys, ServiceTrust, resolve_service_keys
from openecos.service.migration_delivery import NO_FAULTS, EstateDelivery, FaultPlan
from openecos.service.migration_desk import MigrationDesk
from openecos.service.migration_engine import EngineConfig, MigrationEngine
from openecos.service.migration_identities import MigrationIdentities, resolve_migration_identities
from openecos.service.migration_settings import MigrationSettings, PolicySettings
from openecos.smki import SmkiCertificate, TestPki, sandbox_pki, write_test_pki
from openecos.smki.sandbox import SUPPLIER_A, SUPPLIER_B
from openecos.store import (
    CosCredentialState,
    DeviceStatus,
    DeviceType,
    KnownCertificate,
    Mpid,
    Party,
    PartyUser,
    Repositories,
    Store,
    UserRole,
    schema,
)
from openecos.store.migration import MigrationRepository, migration_repository
from openecos.store.migration_regime import regime_repository

SEED = DEFAULT_DEVICE_KEY_SEED
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REGISTERED_FROM = datetime(2025, 1, 1, tzinfo=UTC)
MANUFACTURER, MODEL, FIRMWARE = "OPENECOS", "SIM-1", "1.0"


class VirtualClock:
    """Time that moves only when told (thread-safe)."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, when)


@cache
def pki() -> TestPki:
    return sandbox_pki()


def meter_eui(i: int) -> Eui64:
    return Eui64.parse(f"00DB13{i:010X}")


def mpxn_of(i: int) -> str:
    return f"{2000000000000 + i:013d}"


def supplier_of(i: int) -> str:
    return "A" if i % 2 == 0 else "B"


class DerivedKeyDirectory:
    """Device public keys from the derived keys (what the device certificates carry)."""

    def __init__(self, seed: bytes) -> None:
        self._keys = DerivedDeviceKeys(seed, cache_size=4096)
        self._cache: dict[tuple[Eui64, KeyUsage], ec.EllipticCurvePublicKey] = {}

    def public_key(self, device: Eui64, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        key = self._cache.get((device, usage))
        if key is None:
            key = self._keys.public_key(device, usage)
            self._cache[(device, usage)] = key
        return key


@dataclass
class World:
    directory: Path
    url: str
    store: Store
    keys: ServiceKeys
    trust: ServiceTrust
    identities: MigrationIdentities
    profile: MeterProfile
    estate: SimulatedEstate
    clock: VirtualClock
    meters: list[Eui64]
    fast: bool
    engines: list[MigrationEngine] = field(default_factory=list)

    @property
    def mig(self) -> MigrationRepository:
        return migration_repository(self.store)

    def desk(self) -> MigrationDesk:
        return MigrationDesk(self.store, self.clock, self.identities)

    def engine(
        self,
        *,
        plan: FaultPlan = NO_FAULTS,
        worker_id: str = "w1",
        batch: int = 64,
        **config: object,
    ) -> MigrationEngine:
        deliver = EstateDelivery(self.estate, self.clock, plan)
        engine = MigrationEngine(
            self.store,
            self.identities,
            self.clock,
            deliver,
            worker_id=worker_id,
            config=EngineConfig(batch=batch, plan=plan, **config),  # type: ignore[arg-type]
            device_keys=DerivedKeyDirectory(SEED) if self.fast else None,
        )
        self.engines.append(engine)
        return engine

    def configure(
        self,
        *,
        capacity: tuple[int, int, int] = (1_000_000, 1_000_000, 10_000),
        policy: PolicySettings | None = None,
        approved: Iterable[ApprovedModel] = (ApprovedModel(MANUFACTURER, MODEL),),
    ) -> None:
        from openecos.migration import CapacityLimits

        desk = self.desk()
        desk.update_settings(
            lambda s: MigrationSettings(
                capacity=CapacityLimits(*capacity),
                order=s.order,
                approved=ApprovedModels(tuple(approved)),
                device_types=s.device_types,
                policy=policy or FAST_POLICY,
            ),
            actor="test",
            what="test setup",
        )

    def start(self) -> None:
        self.desk().control(RunEvent.START, actor="test")

    def close(self) -> None:
        self.store.close()


#: Timings of tests: every backoff a thousandth of the default, deadlines in seconds.
FAST_POLICY = PolicySettings(
    response_timeout=10.0,
    read_delay=5.0,
    review_interval=86400.0,
    reassess_interval=60.0,
    backoff_scale=0.001,
)


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


def _parties(tx: Repositories) -> None:
    for party_id, user, mpid in (("A", SUPPLIER_A, "AAAA"), ("B", SUPPLIER_B, "BBBB")):
        tx.parties.add_party(Party(party_id, f"Supplier {party_id}"))
        tx.parties.add_user(PartyUser(user, party_id, frozenset({UserRole.IMPORT_SUPPLIER})))
        tx.parties.add_mpid(Mpid(mpid, party_id, user, UserRole.IMPORT_SUPPLIER))
    for entry in pki().entries:
        if entry.certificate.key_usage is not None:
            tx.certificates.add(_known(entry.certificate))


def _cell_rows(device: Eui64, transitional: str, only_tcos: bool) -> list[dict[str, object]]:
    rows = []
    for cell, certificate in sandbox_cells(pki(), transitional_cos=transitional).items():
        if only_tcos and cell.remote_party_role is not RemotePartyRole.TRANSITIONAL_COS:
            continue
        anchor = AnchorCertificate.of(certificate)
        rows.append(
            {
                "device": device,
                "role": cell.remote_party_role,
                "key_usage": cell.key_usage,
                "cell_usage": cell.cell_usage,
                "certificate_der": certificate.der,
                "subject_eui": anchor.subject_unique_id,
                "ski": anchor.subject_key_id,
            }
        )
    return rows


def make_world(
    directory: Path,
    url: str,
    *,
    meters: int,
    ecos: Iterable[int] = (),
    born_ecos: Iterable[int] = (),
    models: dict[int, tuple[str, str, str]] | None = None,
    fast: bool = False,
) -> World:
    """A store with ``meters`` meters (indexes in ``ecos`` on ECoS, ``born_ecos`` born so)."""
    ecos_set, born_set = set(ecos), set(born_ecos)
    models = models or {}
    pki_dir = directory / "pki"
    if not pki_dir.exists():
        write_test_pki(pki(), pki_dir)
    store = Store.open(url)
    keys = DerivedDeviceKeys(SEED)
    euis = [meter_eui(i) for i in range(meters)]
    with store.transaction() as tx:
        _parties(tx)
    chunk = 5_000
    for start in range(0, meters, chunk):
        with store.engine.begin() as conn:
            devices, regs, cells, certs = [], [], [], []
            for i in range(start, min(meters, start + chunk)):
                eui = euis[i]
                on_ecos = i in ecos_set or i in born_set
                manufacturer, model, firmware = models.get(i, (MANUFACTURER, MODEL, FIRMWARE))
                devices.append(
                    {
                        "eui": eui,
                        "device_type": DeviceType.ESME,
                        "status": DeviceStatus.COMMISSIONED,
                        "mpxn": mpxn_of(i),
                        "manufacturer": manufacturer,
                        "model": model,
                        "firmware_version": firmware,
                        "credential_state": CosCredentialState.ECOS
                        if on_ecos
                        else CosCredentialState.TCOS,
                        "born_ecos": i in born_set,
                    }
                )
                regs.append(
                    {
                        "mpxn": mpxn_of(i),
                        "supplier_mpid": supplier_of(i) * 4,
                        "effective_from": REGISTERED_FROM,
                        "effective_to": None,
                    }
                )
                cells += _cell_rows(eui, "ecos-ds" if on_ecos else "tcos-ds", only_tcos=fast)
                if not fast:
                    minted = sandbox_device_certificates(pki(), eui, keys)
                    for c in (minted.digital_signature, minted.key_agreement):
                        certs.append(_known(c))
            conn.execute(insert(schema.devices), devices)
            conn.execute(insert(schema.registrations), regs)
            conn.execute(insert(schema.device_trust_anchors), cells)
        if certs:
            with store.transaction() as tx:
                for certificate in certs:
                    tx.certificates.add(certificate)
    trust = ServiceTrust.from_test_pki(pki_dir)
    profile = MeterProfile(keys=DerivedDeviceKeys(SEED), policies=trust.policies)
    if fast:
        _commission_all(store, profile, euis, ecos_set | born_set)
    service_keys = resolve_service_keys(open_keystore([pki_dir]), DccKeyNames())
    identities = resolve_migration_identities(service_keys, trust, store)
    estate = SimulatedEstate(store, profile, _fast_commissioner(profile) if fast else None)
    return World(
        directory,
        url,
        store,
        service_keys,
        trust,
        identities,
        profile,
        estate,
        VirtualClock(),
        euis,
        fast,
    )


def _commission_all(
    store: Store, profile: MeterProfile, euis: list[Eui64], on_ecos: set[int]
) -> None:
    """Puts every meter of a fast world in the simulated estate at once (bulk rows)."""
    cells = {
        False: sandbox_cells(pki(), transitional_cos="tcos-ds"),
        True: sandbox_cells(pki(), transitional_cos="ecos-ds"),
    }
    certificates: dict[bytes, bytes] = {}
    chunk = 5_000
    for start in range(0, len(euis), chunk):
        rows = []
        for i in range(start, min(len(euis), start + chunk)):
            state = commission_meter(
                euis[i], cells=cells[i in on_ecos], certificates=profile.certificates
            )
            blob, used = encode_meter(state)
            certificates.update(used)
            rows.append(
                {
                    "device": euis[i],
                    "state": blob,
                    "due_at": None,
                    "broken": False,
                    "updated_at": START,
                }
            )
        with store.engine.begin() as conn:
            conn.execute(insert(schema.sim_meters), rows)
    with store.engine.begin() as conn:
        conn.execute(
            insert(schema.sim_certificates),
            [{"fingerprint": fp, "der": der} for fp, der in certificates.items()],
        )


def _fast_commissioner(profile: MeterProfile):  # type: ignore[no-untyped-def]
    """Commissions a meter from the sandbox cells (its transitionalCoS cell from the inventory)."""
    tcos_cells = sandbox_cells(pki(), transitional_cos="tcos-ds")
    ecos_cells = sandbox_cells(pki(), transitional_cos="ecos-ds")
    ecos_der = pki().entry("ecos-ds").certificate.der

    def commission(repos: Repositories, device: Eui64) -> MeterState | None:
        anchors = repos.devices.trust_anchors(device)
        if not anchors:
            return None
        on_ecos = any(a.certificate_der == ecos_der for a in anchors)
        cells = ecos_cells if on_ecos else tcos_cells
        return commission_meter(device, cells=cells, certificates=profile.certificates)

    return commission


#: Statuses a meter rests in until an operator or time changes something.
SETTLED = frozenset(
    {
        MigrationStatus.MIGRATED,
        MigrationStatus.EXCEPTION,
        MigrationStatus.HELD,
        MigrationStatus.FIELD_VISIT,
        MigrationStatus.INELIGIBLE,
    }
)


def settled(world: World) -> bool:
    """Nothing will happen without an operator: every meter at rest, or waiting to start
    while the engine may start nothing (not running, or not the migration regime)."""
    counts = world.mig.counts_by_status()
    unassessed = world.mig.unassessed(after=None, limit=1)
    resting = set(SETTLED)
    if not may_start(regime_repository(world.store).current(), world.desk().run_state().state):
        resting |= {MigrationStatus.ELIGIBLE, MigrationStatus.RETRY_WAIT}
    return not unassessed and all(s in resting for s, n in counts.items() if n)


def drive(world: World, *engines: MigrationEngine, max_rounds: int = 20_000) -> int:
    """Steps the engines; when none has work, jumps the clock to the next due time.

    Stops when every meter is settled (migrated, exception, held, field visit,
    ineligible). Returns the rounds taken.
    """
    engines = engines or tuple(world.engines)
    for rounds in range(max_rounds):
        busy = sum(e.step() for e in engines)
        if busy:
            continue
        if settled(world):
            return rounds
        due = engines[0].next_due()
        if due is None:
            return rounds
        world.clock.set(max(due, world.clock.now() + timedelta(seconds=1)))
    raise AssertionError("the engines did not settle")
