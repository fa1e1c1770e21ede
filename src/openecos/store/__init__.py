"""``openecos.store``: the system of record (SQLAlchemy Core; SQLite or PostgreSQL).

Open it with :meth:`Store.open`; records go in and come out as frozen
dataclasses from :mod:`openecos.store.records`; every refusal is a
:class:`StoreError`. See :mod:`openecos.store.facade` for a quickstart and
each repository module for the rule it holds.
"""

from openecos.store.audit import AuditLog
from openecos.store.commands import CommandRepository
from openecos.store.counters import SigningCounterRepository
from openecos.store.devices import DeviceRepository
from openecos.store.engine import open_engine, read_transaction, write_transaction
from openecos.store.enums import (
    IN_FLIGHT_COMMAND_STATUSES,
    SUPPLIER_ROLES,
    CommandStatus,
    CosCredentialState,
    DeviceStatus,
    DeviceType,
    OutboxKind,
    RequestStatus,
    UserRole,
    WorkStatus,
)
from openecos.store.errors import (
    CommandInFlight,
    Conflict,
    CounterExhausted,
    CounterNotAdvanced,
    DuplicateKey,
    InvalidRecord,
    LeaseLost,
    NotFound,
    OverlappingRegistration,
    ReferenceMissing,
    StaleState,
    StoreError,
)
from openecos.store.facade import Repositories, Store
from openecos.store.migrations import LATEST_VERSION, MIGRATIONS, SchemaTooNew, migrate
from openecos.store.outbox import OutboxRepository
from openecos.store.parties import CertificateRepository, PartyRepository
from openecos.store.records import (
    AuditEntry,
    CommandRecord,
    Device,
    KnownCertificate,
    Mpid,
    OutboxMessage,
    Party,
    PartyUser,
    RegisteredSupplier,
    Registration,
    RequestRecord,
    TrustAnchorCell,
    normalise_issuer_name,
)
from openecos.store.registrations import RegistrationRepository
from openecos.store.requests import RequestRepository
from openecos.store.service_state import ServiceStateRepository
from openecos.store.simulated import SimulatedEstateRepository, SimulatedMeterRow, SimulatedOutput
from openecos.store.work import WorkClaim, WorkQueue

__all__ = [
    "IN_FLIGHT_COMMAND_STATUSES",
    "LATEST_VERSION",
    "MIGRATIONS",
    "SUPPLIER_ROLES",
    "AuditEntry",
    "AuditLog",
    "CertificateRepository",
    "CommandInFlight",
    "CommandRecord",
    "CommandRepository",
    "CommandStatus",
    "Conflict",
    "CosCredentialState",
    "CounterExhausted",
    "CounterNotAdvanced",
    "Device",
    "DeviceRepository",
    "DeviceStatus",
    "DeviceType",
    "DuplicateKey",
    "InvalidRecord",
    "KnownCertificate",
    "LeaseLost",
    "Mpid",
    "NotFound",
    "OutboxKind",
    "OutboxMessage",
    "OutboxRepository",
    "OverlappingRegistration",
    "Party",
    "PartyRepository",
    "PartyUser",
    "ReferenceMissing",
    "RegisteredSupplier",
    "Registration",
    "RegistrationRepository",
    "Repositories",
    "RequestRecord",
    "RequestRepository",
    "RequestStatus",
    "SchemaTooNew",
    "ServiceStateRepository",
    "SigningCounterRepository",
    "SimulatedEstateRepository",
    "SimulatedMeterRow",
    "SimulatedOutput",
    "StaleState",
    "Store",
    "StoreError",
    "TrustAnchorCell",
    "UserRole",
    "WorkClaim",
    "WorkQueue",
    "WorkStatus",
    "migrate",
    "normalise_issuer_name",
    "open_engine",
    "read_transaction",
    "write_transaction",
]
