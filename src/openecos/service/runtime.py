"""The service runtime: one object that wires store, keys, DUIS, cos, estate and WAN.

Theory of operation. :func:`open_runtime` turns a :class:`ServiceConfig` into a
:class:`ServiceRuntime`: it opens (and migrates) the store, loads the DUIS
schema, the SMKI trust and the keys (a software key store over files, or a
PKCS#11 token), and builds the parts:

- :class:`~openecos.service.intake.Intake`, called by the HTTP API's threads;
- a background thread running an asyncio loop with the
  :class:`~openecos.network.SimulatedWan` over the persistent estate
  (:mod:`.estate`), on which one loop repeatedly: claims and processes
  requests (:mod:`.worker`), processes meter answers (:mod:`.responses`),
  lets due future-dated commands execute, and resends or gives up stale
  commands. Everything it does is recorded in the store first, so any number
  of runtimes may share one PostgreSQL database and any one may be killed.
- with :attr:`ServiceConfig.migration`, the TCoS → ECoS migration engine
  (:mod:`.migration_engine`) steps in the same loop; in every runtime the
  meters' answers to migration commands are applied by the migration side
  (:mod:`.migration_runtime`), whichever process sent them.

The clock is injected (:mod:`.clock`); the WAN schedules by the loop's time,
mapped to the service clock at each call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from openecos.device import DerivedDeviceKeys, MeterProfile
from openecos.duis import DuisSchema
from openecos.keys import KeyStore, Pkcs11Config, Pkcs11KeyStore, open_keystore
from openecos.network import SimulatedWan, WanConfig
from openecos.service.clock import Clock, SystemClock
from openecos.service.estate import PersistentFleet, SimulatedEstate
from openecos.service.identities import (
    DccKeyNames,
    ServiceKeys,
    ServiceTrust,
    resolve_service_keys,
)
from openecos.service.intake import Intake
from openecos.service.migration_answers import MigrationAnswers
from openecos.service.migration_engine import EngineConfig, MigrationEngine
from openecos.service.migration_identities import resolve_migration_identities
from openecos.service.migration_runtime import MigrationAwareResponses, PolicyCache, wan_deliver
from openecos.service.quarantine import QuarantineDesk
from openecos.service.worker import CosWorker, WorkerSettings
from openecos.store import Store

log = logging.getLogger(__name__)

#: The seed of the sandbox meters' derived keys when none is configured.
DEFAULT_DEVICE_KEY_SEED = b"openecos sandbox meters"


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """How to run the service. Paths are read at start-up only."""

    store_url: str
    pki_dir: Path
    """A test-PKI directory (``pki.json``): trust anchors, policies and, by default, keys."""
    xsd_dir: Path
    """The DUIS V5.4 schema set (``DUIS Schema V5.4.xsd`` and its imports)."""
    key_sources: tuple[Path, ...] = ()
    """Key files or directories for a software key store; empty means ``pki_dir``
    (or, with ``pkcs11``, no software keys at all)."""
    pkcs11: Pkcs11Config | None = None
    """A PKCS#11 token for the DCC keys it holds. Alone, every key must be in it; with
    ``key_sources`` too, the keys it lacks come from them (a name in both is refused)."""
    names: DccKeyNames = field(default_factory=DccKeyNames)
    device_key_seed: bytes = DEFAULT_DEVICE_KEY_SEED
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    wan: WanConfig = field(default_factory=WanConfig)
    run_workers: bool = True
    worker_id: str = field(default_factory=default_worker_id)
    poll_interval: float = 0.02
    migration: EngineConfig | None = None
    """Run the TCoS → ECoS migration engine in this process's worker loop (None: not here)."""


class _WanClock:
    """The service clock for the WAN, mapped onto the loop's time at each call."""

    def __init__(self, clock: Clock, loop: asyncio.AbstractEventLoop) -> None:
        self._clock = clock
        self._loop = loop

    def now(self) -> datetime:
        return self._clock.now()

    def loop_time(self, when: datetime) -> float:
        return self._loop.time() + (when - self._clock.now()).total_seconds()


class ServiceRuntime:
    """The running service (see the module docstring). ``start()``, then ``stop()``."""

    def __init__(
        self,
        store: Store,
        schema: DuisSchema,
        keys: ServiceKeys,
        trust: ServiceTrust,
        profile: MeterProfile,
        clock: Clock,
        *,
        worker_id: str,
        settings: WorkerSettings | None = None,
        wan: WanConfig | None = None,
        run_workers: bool = True,
        poll_interval: float = 0.02,
        migration: EngineConfig | None = None,
        names: DccKeyNames | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.trust = trust
        self.clock = clock
        self.worker_id = worker_id
        self.settings = settings or WorkerSettings()
        self.wan_config = wan or WanConfig()
        self.run_workers = run_workers
        self.poll_interval = poll_interval
        self.intake = Intake(store, schema, keys, trust, clock)
        self.estate = SimulatedEstate(store, profile)
        self.migration = migration
        self.identities = resolve_migration_identities(keys, trust, store, names)
        self.responses = MigrationAwareResponses(
            store, keys, clock, MigrationAnswers(store, self.identities, PolicyCache(store))
        )
        self.quarantine = QuarantineDesk(store, clock, self.settings.tad)
        self.token: Pkcs11KeyStore | None = None  # closed with the runtime
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.run_workers or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="openecos-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.store.close()
        if self.token is not None:
            self.token.close()

    def wake(self) -> None:
        """Asks the worker loop to look for work now (thread-safe)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    # -- the worker loop ----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        fleet = PersistentFleet(self.estate, on_output=self._wake.set, now=self.clock.now)
        wan = SimulatedWan(
            fleet, lambda _delivery: None, clock=_WanClock(self.clock, loop), config=self.wan_config
        )
        worker = CosWorker(
            self.store,
            self.keys,
            self.trust,
            self.clock,
            wan.send,
            worker_id=self.worker_id,
            settings=self.settings,
        )
        engine = (
            None
            if self.migration is None
            else MigrationEngine(
                self.store,
                self.identities,
                self.clock,
                wan_deliver(wan.send),
                worker_id=self.worker_id,
                config=self.migration,
            )
        )
        last_sweep = last_engine = loop.time()
        engine_busy = True
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                busy = 0
                try:
                    busy += worker.process_requests()
                    busy += self.responses.process_outputs()
                    busy += self.estate.advance_due(self.clock.now())
                    if engine is not None and (engine_busy or loop.time() - last_engine >= 0.2):
                        last_engine = loop.time()
                        done = engine.step()
                        engine_busy = done > 0
                        busy += done
                    if loop.time() - last_sweep >= 1.0:
                        last_sweep = loop.time()
                        busy += worker.resend_stale()
                        busy += worker.expire_overdue_alerts()
                except Exception:  # an outage: log, back off, carry on
                    log.exception("worker loop step failed")
                    await asyncio.sleep(0.5)
                if busy:
                    await asyncio.sleep(0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            wan.close()
            self._loop = None


def open_keys(config: ServiceConfig) -> tuple[KeyStore, KeyStore | None]:
    """The software key store and the PKCS#11 token (None without one) ``config`` names."""
    if config.pkcs11 is None:
        return open_keystore(list(config.key_sources or (config.pki_dir,))), None
    token = Pkcs11KeyStore(config.pkcs11.module, config.pkcs11.token_label, config.pkcs11.user_pin)
    if not config.key_sources:
        return token, token
    try:
        return open_keystore(list(config.key_sources)), token
    except BaseException:
        token.close()
        raise


def open_runtime(config: ServiceConfig, clock: Clock | None = None) -> ServiceRuntime:
    """Opens everything :class:`ServiceConfig` names; fails now if anything is missing."""
    store = Store.open(config.store_url)
    token: KeyStore | None = None
    try:
        schema = DuisSchema.load(config.xsd_dir)
        trust = ServiceTrust.from_test_pki(config.pki_dir)
        software, token = open_keys(config)
        keys = resolve_service_keys(software, config.names, token=token)
        profile = MeterProfile(
            keys=DerivedDeviceKeys(config.device_key_seed), policies=trust.policies
        )
    except BaseException:
        store.close()
        if isinstance(token, Pkcs11KeyStore):
            token.close()
        raise
    runtime = ServiceRuntime(
        store,
        schema,
        keys,
        trust,
        profile,
        clock or SystemClock(),
        worker_id=config.worker_id,
        settings=config.worker,
        wan=config.wan,
        run_workers=config.run_workers,
        poll_interval=config.poll_interval,
        migration=config.migration,
        names=config.names,
    )
    runtime.token = token if isinstance(token, Pkcs11KeyStore) else None
    return runtime


__all__ = [
    "DEFAULT_DEVICE_KEY_SEED",
    "ServiceConfig",
    "ServiceRuntime",
    "default_worker_id",
    "open_runtime",
]
