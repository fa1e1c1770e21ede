"""``Store``: one object that opens the database, migrates it, and holds the repositories.

Quickstart::

    store = Store.open("sqlite:///openecos.db")    # or postgresql+psycopg://...
    store.parties.add_party(Party("P1", "Supplier One"))
    with store.transaction() as tx:                 # several writes, all or none
        tx.requests.advance_counter(originator, counter)
        tx.requests.add(record)
    n = store.signing_counters.reserve(cos_entity)  # always its own transaction
    store.close()

Each repository method called on ``store`` is one transaction of its own.
Inside ``store.transaction()`` the same repositories run in the caller's
transaction, each call a SAVEPOINT (a refused write does not poison the
rest). Signing counters are deliberately absent from the transaction view:
a counter must be committed before the signature exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from openecos.store._base import Executor
from openecos.store.audit import AuditLog
from openecos.store.commands import CommandRepository
from openecos.store.counters import SigningCounterRepository
from openecos.store.devices import DeviceRepository
from openecos.store.engine import open_engine, read_transaction, write_transaction
from openecos.store.migrations import migrate
from openecos.store.outbox import OutboxRepository
from openecos.store.parties import CertificateRepository, PartyRepository
from openecos.store.registrations import RegistrationRepository
from openecos.store.requests import RequestRepository
from openecos.store.service_state import ServiceStateRepository
from openecos.store.simulated import SimulatedEstateRepository
from openecos.store.work import WorkQueue


@dataclass(frozen=True, slots=True)
class Repositories:
    """The repositories that can share one transaction."""

    parties: PartyRepository
    certificates: CertificateRepository
    registrations: RegistrationRepository
    devices: DeviceRepository
    requests: RequestRepository
    commands: CommandRepository
    outbox: OutboxRepository
    work: WorkQueue
    audit: AuditLog
    estate: SimulatedEstateRepository
    service_state: ServiceStateRepository

    @classmethod
    def bound(cls, db: Executor) -> Repositories:
        return cls(
            parties=PartyRepository(db),
            certificates=CertificateRepository(db),
            registrations=RegistrationRepository(db),
            devices=DeviceRepository(db),
            requests=RequestRepository(db),
            commands=CommandRepository(db),
            outbox=OutboxRepository(db),
            work=WorkQueue(db),
            audit=AuditLog(db),
            estate=SimulatedEstateRepository(db),
            service_state=ServiceStateRepository(db),
        )

    def flat(self) -> Repositories:
        """These repositories without a SAVEPOINT per call, in the same transaction.

        For a caller that wraps its calls in one :meth:`savepoint` of its own and
        never catches a refused write to go on inside it: a refused write then
        ends that savepoint (PostgreSQL allows nothing more in it), which the
        caller rolls back whole. Saves two statements per call.
        """
        db = self.audit._db
        if db.connection is None:
            raise RuntimeError("flat() needs repositories bound to a transaction")
        return Repositories.bound(Executor(db.engine, db.connection, flat=True))

    @contextmanager
    def savepoint(self) -> Iterator[Repositories]:
        """A nested transaction (SAVEPOINT) in this one: rolled back alone if the block raises.

        Lets one transaction carry the writes of several independent callers
        (group commit) without one caller's refused write undoing the others'.
        """
        connection = self.audit._db.connection  # every repository here shares one Executor
        if connection is None:
            raise RuntimeError("savepoint() needs repositories bound to a transaction")
        with connection.begin_nested():
            yield self


class Store:
    """The system of record: engine, schema and repositories."""

    def __init__(self, engine: Engine) -> None:
        """Wraps an engine made by :func:`open_engine` that is already migrated."""
        self.engine = engine
        repos = Repositories.bound(Executor(engine))
        self.parties = repos.parties
        self.certificates = repos.certificates
        self.registrations = repos.registrations
        self.devices = repos.devices
        self.requests = repos.requests
        self.commands = repos.commands
        self.outbox = repos.outbox
        self.work = repos.work
        self.audit = repos.audit
        self.estate = repos.estate
        self.service_state = repos.service_state
        self.signing_counters = SigningCounterRepository(engine)

    @classmethod
    def open(cls, url: str, *, run_migrations: bool = True, **engine_kwargs: Any) -> Store:
        """Opens ``sqlite:///path.db`` or ``postgresql+psycopg://...`` and migrates it."""
        engine = open_engine(url, **engine_kwargs)
        if run_migrations:
            migrate(engine)
        return cls(engine)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Repositories]:
        """Repositories bound to one transaction: committed on exit, rolled back on error.

        ``durable=False``: see :func:`openecos.store.engine.write_transaction`.
        """
        with write_transaction(self.engine, durable=durable) as conn:
            yield Repositories.bound(Executor(self.engine, conn))

    @contextmanager
    def reading(self) -> Iterator[Repositories]:
        """Repositories bound to one read-only transaction: many reads, one BEGIN.

        For reads only (SQLite: deferred, never waiting for writers).
        """
        with read_transaction(self.engine) as conn:
            yield Repositories.bound(Executor(self.engine, conn))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
