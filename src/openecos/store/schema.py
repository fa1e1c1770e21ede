"""The tables of the system of record, as SQLAlchemy Core metadata.

This module is the *current* shape of the schema and what the repositories
query. The database is created and upgraded only by the ordered steps in
:mod:`openecos.store.migrations`; a test reflects a migrated database and
compares it with this metadata, so the two cannot drift apart.

Where a rule can be held by the database it is: foreign keys tie an MPID to a
user of its own party that holds the MPID's role; a partial unique index
allows at most one credential-changing command in flight per device
(docs/architecture.md, Invariants); ``(signer, originator_counter)`` is unique
so no GBCS counter is used twice; triggers make ``audit_log`` append-only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
)
from sqlalchemy.dialects.postgresql import JSONB

from openecos.gbcs.codes import CellUsage, KeyUsage, MessageCode, RemotePartyRole
from openecos.store.enums import (
    IN_FLIGHT_COMMAND_STATUSES,
    CommandStatus,
    CosCredentialState,
    DeviceStatus,
    DeviceType,
    OutboxKind,
    RequestStatus,
    UserRole,
    WorkStatus,
)
from openecos.store.records import GSP_GROUPS
from openecos.store.types import BiasedU64, EuiText, IntEnumColumn, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: An autoincrementing 64-bit key (SQLite autoincrements only INTEGER keys).
Serial = BigInteger().with_variant(Integer(), "sqlite")
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def _enum(kind: type[Any], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

parties = Table(
    "parties",
    metadata,
    Column("party_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
)

party_users = Table(
    "party_users",
    metadata,
    Column("user_id", EuiText, primary_key=True),
    Column("party_id", ForeignKey("parties.party_id"), nullable=False, index=True),
    UniqueConstraint("user_id", "party_id"),
)

party_user_roles = Table(
    "party_user_roles",
    metadata,
    Column(
        "user_id",
        ForeignKey("party_users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role", _enum(UserRole, "user_role"), primary_key=True),
)

mpids = Table(
    "mpids",
    metadata,
    Column("mpid", String(4), primary_key=True),
    Column("party_id", String(64), nullable=False),
    Column("user_id", EuiText, nullable=False, index=True),
    Column("role", _enum(UserRole, "mpid_role"), nullable=False),
    # The MPID's user belongs to the MPID's party ...
    ForeignKeyConstraint(["user_id", "party_id"], ["party_users.user_id", "party_users.party_id"]),
    # ... and may act in the MPID's market role.
    ForeignKeyConstraint(
        ["user_id", "role"], ["party_user_roles.user_id", "party_user_roles.role"]
    ),
)

certificates = Table(
    "certificates",
    metadata,
    Column("fingerprint", LargeBinary(32), primary_key=True),
    Column("issuer_key", String(1024), nullable=False),
    Column("issuer_name", String(1024), nullable=False),
    Column("serial", String(60), nullable=False),
    Column("subject_eui", EuiText, nullable=True),
    Column("role", IntEnumColumn(RemotePartyRole), nullable=True),
    Column("key_usage", _enum(KeyUsage, "key_usage"), nullable=False),
    Column("der", LargeBinary, nullable=False),
    UniqueConstraint("issuer_key", "serial"),
    Index(None, "subject_eui", "role"),
)

registrations = Table(
    "registrations",
    metadata,
    Column("registration_id", Serial, primary_key=True, autoincrement=True),
    Column("mpxn", String(13), nullable=False),
    Column("supplier_mpid", ForeignKey("mpids.mpid"), nullable=False, index=True),
    Column("effective_from", UtcDateTime, nullable=False),
    Column("effective_to", UtcDateTime, nullable=True),
    UniqueConstraint("mpxn", "effective_from"),
    CheckConstraint(
        "effective_to IS NULL OR effective_to > effective_from", name="interval_not_empty"
    ),
    # EMRR attribution (migration 6): the registrations whose interval began or ended
    # between two refreshes (openecos.store.emrr.sync_attribution).
    Index(None, "effective_from"),
    Index(None, "effective_to"),
)

REGION_CHECK = "region IS NULL OR region IN ({})".format(", ".join(f"'{g}'" for g in GSP_GROUPS))

devices = Table(
    "devices",
    metadata,
    Column("eui", EuiText, primary_key=True),
    Column("device_type", _enum(DeviceType, "device_type"), nullable=False),
    Column("status", _enum(DeviceStatus, "device_status"), nullable=False),
    Column("mpxn", String(13), nullable=True, index=True),
    Column("manufacturer", String(30), nullable=False),
    Column("model", String(30), nullable=False),
    Column("firmware_version", String(8), nullable=True),
    Column("credential_state", _enum(CosCredentialState, "cos_state"), nullable=False),
    Column("born_ecos", Boolean(create_constraint=True, name="born_ecos"), nullable=False),
    # Migration 8: the meter's GSP group (optional; the engine may order starts by it).
    Column("region", String(2), CheckConstraint(REGION_CHECK, name="region"), nullable=True),
    Index(None, "credential_state", "status", "eui"),
)

device_trust_anchors = Table(
    "device_trust_anchors",
    metadata,
    Column("device", ForeignKey("devices.eui", ondelete="CASCADE"), primary_key=True),
    Column("role", IntEnumColumn(RemotePartyRole), primary_key=True),
    Column("key_usage", _enum(KeyUsage, "ta_key_usage"), primary_key=True),
    Column("cell_usage", IntEnumColumn(CellUsage), primary_key=True),
    Column("certificate_der", LargeBinary, nullable=False),
    Column("subject_eui", EuiText, nullable=False),
    Column("ski", LargeBinary, nullable=False),
)

requests = Table(
    "requests",
    metadata,
    Column("request_id", String(80), primary_key=True),
    Column("originator", EuiText, nullable=False),
    Column("target", EuiText, nullable=False, index=True),
    Column("counter", BiasedU64, nullable=False),
    Column("service_reference", String(16), nullable=False),
    Column("service_reference_variant", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("raw_xml", LargeBinary, nullable=False),
    Column("status", _enum(RequestStatus, "request_status"), nullable=False, index=True),
    Column("execution_at", UtcDateTime, nullable=True),
    Column("response_code", String(8), nullable=True),
    Column("cos_party", EuiText, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

request_counters = Table(
    "request_counters",
    metadata,
    Column("originator", EuiText, primary_key=True),
    Column("last_counter", BiasedU64, nullable=False),
)

commands = Table(
    "commands",
    metadata,
    Column("signer", EuiText, primary_key=True),
    Column("originator_counter", BiasedU64, primary_key=True),
    Column("device", ForeignKey("devices.eui"), nullable=False, index=True),
    Column("request_id", ForeignKey("requests.request_id"), nullable=True, index=True),
    Column("message_code", IntEnumColumn(MessageCode), nullable=False),
    Column(
        "credential_changing",
        Boolean(create_constraint=True, name="credential_changing"),
        nullable=False,
    ),
    Column("payload", LargeBinary, nullable=False),
    Column("status", _enum(CommandStatus, "command_status"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("response", LargeBinary, nullable=True),
)

_in_flight = and_(
    commands.c.credential_changing,
    commands.c.status.in_(sorted(s.value for s in IN_FLIGHT_COMMAND_STATUSES)),
)
Index(
    "uq_commands_in_flight",
    commands.c.device,
    unique=True,
    sqlite_where=_in_flight,
    postgresql_where=_in_flight,
)

signing_counters = Table(
    "signing_counters",
    metadata,
    Column("entity", EuiText, primary_key=True),
    Column("last_counter", BiasedU64, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("message_id", Serial, primary_key=True, autoincrement=True),
    Column("user_id", EuiText, nullable=False),
    Column("kind", _enum(OutboxKind, "outbox_kind"), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("request_id", String(80), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("consumed_at", UtcDateTime, nullable=True),
)
Index(
    "ix_outbox_waiting",
    outbox.c.user_id,
    outbox.c.message_id,
    sqlite_where=outbox.c.consumed_at.is_(None),
    postgresql_where=outbox.c.consumed_at.is_(None),
)

work_items = Table(
    "work_items",
    metadata,
    Column("item_id", Serial, primary_key=True, autoincrement=True),
    Column("queue", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Column("status", _enum(WorkStatus, "work_status"), nullable=False),
    Column("available_at", UtcDateTime, nullable=False),
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index(None, "queue", "status", "available_at"),
)
_active = work_items.c.status.in_([WorkStatus.PENDING.value, WorkStatus.CLAIMED.value])
Index(
    "uq_work_items_active",
    work_items.c.queue,
    work_items.c.subject,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("entry_id", Serial, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(128), nullable=False),
    Column("subject", String(255), nullable=False, index=True),
    Column("details", JsonDocument, nullable=False),
)

# --- the simulated meter estate (migration 3) ------------------------------------
# The sandbox's meters live in the system of record so that they survive a
# restart of the service and are shared by every service process (the
# production shape has no simulated meters; these tables stay empty there).

sim_certificates = Table(
    "sim_certificates",
    metadata,
    Column("fingerprint", LargeBinary(32), primary_key=True),
    Column("der", LargeBinary, nullable=False),
)

sim_meters = Table(
    "sim_meters",
    metadata,
    Column("device", EuiText, primary_key=True),
    Column("state", LargeBinary, nullable=False),
    Column("due_at", UtcDateTime, nullable=True, index=True),
    Column("broken", Boolean(create_constraint=True, name="sim_broken"), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

sim_meter_outputs = Table(
    "sim_meter_outputs",
    metadata,
    Column("output_id", Serial, primary_key=True, autoincrement=True),
    Column("device", EuiText, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("recipient", EuiText, nullable=False),
    Column("originator_counter", BiasedU64, nullable=False),
    Column("message", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("consumed_at", UtcDateTime, nullable=True),
)
Index(
    "ix_sim_meter_outputs_waiting",
    sim_meter_outputs.c.output_id,
    sqlite_where=sim_meter_outputs.c.consumed_at.is_(None),
    postgresql_where=sim_meter_outputs.c.consumed_at.is_(None),
)

#: Tables created by migration 3.
SIMULATION_TABLES = (sim_certificates, sim_meters, sim_meter_outputs)

# --- small named documents of the service (migration 4) ----------------------------
# E.g. the Threshold Anomaly Detection counts: one row, locked FOR UPDATE by the
# worker that updates it, in the same transaction as the request it judged.

service_state = Table(
    "service_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: Tables created by migration 4.
SERVICE_STATE_TABLES = (service_state,)

# --- the TCoS -> ECoS migration engine (migration 5) -------------------------------
# One compact row per meter the engine knows (openecos.migration.record.MeterMigration),
# the ETMAD regime's history and the approvals waiting for a change. Enumerations are
# stored by member NAME (status 'IN_FLIGHT', ineligible 'MODEL_NOT_APPROVED', ...) as
# short text; the migration layer's records validate them (this module cannot import
# openecos.migration, which imports the store). openecos.store.migration documents the
# queries (claims, EMRR counts) these indexes serve.

_Name = String(32)

migration_meters = Table(
    "migration_meters",
    metadata,
    Column("device", ForeignKey("devices.eui"), primary_key=True),
    Column("status", _Name, nullable=False),
    Column("reason", _Name, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("next_at", UtcDateTime, nullable=True),
    Column("credentials", _Name, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("total_attempts", Integer, nullable=False),
    Column("reads", Integer, nullable=False),
    Column("error", _Name, nullable=True),
    Column("ineligible", _Name, nullable=True),
    Column("command_counter", BiasedU64, nullable=True),
    Column("read_counter", BiasedU64, nullable=True),
    Column("actor", String(128), nullable=True),
    Column("note", Text, nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    # Claims: the due work of one status, earliest first. EMRR: counts by status and reason.
    Index(None, "status", "next_at"),
    Index(None, "status", "ineligible"),
)

regime_changes = Table(
    "regime_changes",
    metadata,
    Column("change_id", Serial, primary_key=True, autoincrement=True),
    Column("previous", String(16), nullable=False),
    Column("event", String(16), nullable=False),
    Column("regime", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("approvals", JsonDocument, nullable=False),
    Column("readiness", JsonDocument, nullable=True),
)

regime_approvals = Table(
    "regime_approvals",
    metadata,
    Column("approval_id", Serial, primary_key=True, autoincrement=True),
    Column("event", String(16), nullable=False),
    Column("approver", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("change_id", ForeignKey("regime_changes.change_id"), nullable=True, index=True),
)

#: Tables created by migration 5.
MIGRATION_ENGINE_TABLES = (migration_meters, regime_changes, regime_approvals)

# --- EMRR counters (migration 6) ---------------------------------------------------
# openecos.store.emrr documents them: the supplier each meter counts under, the
# append-only ledger of counts (kept by triggers on PostgreSQL), and the MPxNs whose
# registrations were written since their meters were last attributed.

emrr_attribution = Table(
    "emrr_attribution",
    metadata,
    Column("device", String(16), primary_key=True),
    Column("supplier", String(64), nullable=True),
)

emrr_counts = Table(
    "emrr_counts",
    metadata,
    Column("supplier", String(64), nullable=True),
    Column("status", String(32), nullable=False),
    Column("ineligible", String(32), nullable=True),
    Column("migrated_on", Date, nullable=True),
    Column("n", BigInteger, nullable=False),
)

emrr_pending = Table(
    "emrr_pending",
    metadata,
    Column("mpxn", String(13), primary_key=True),
)

#: Tables created by migration 6.
EMRR_TABLES = (emrr_attribution, emrr_counts, emrr_pending)
# --- the enrolment queue (migration 7) ----------------------------------------------
# Inventory devices the migration engine has yet to give a migration_meters row,
# queued by a trigger on devices in the inserting transaction (openecos.store.enrolment).

migration_enrol = Table(
    "migration_enrol",
    metadata,
    Column("device", String(16), primary_key=True),
)

#: Indexes migration 6 adds to tables of migration 1 (step 1 of a new database makes them).
EMRR_INDEXES = tuple(
    i for i in registrations.indexes if i.columns.keys()[0] in ("effective_from", "effective_to")
)

__all__ = [
    "EMRR_INDEXES",
    "EMRR_TABLES",
    "GSP_GROUPS",
    "MIGRATION_ENGINE_TABLES",
    "SERVICE_STATE_TABLES",
    "SIMULATION_TABLES",
    "audit_log",
    "certificates",
    "commands",
    "device_trust_anchors",
    "devices",
    "emrr_attribution",
    "emrr_counts",
    "emrr_pending",
    "metadata",
    "migration_enrol",
    "migration_meters",
    "mpids",
    "outbox",
    "parties",
    "party_user_roles",
    "party_users",
    "regime_approvals",
    "regime_changes",
    "registrations",
    "request_counters",
    "requests",
    "schema_version",
    "service_state",
    "signing_counters",
    "sim_certificates",
    "sim_meter_outputs",
    "sim_meters",
    "work_items",
]
