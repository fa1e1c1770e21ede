"""Closed code sets of the system of record.

Names and spellings follow the source that defines them, so a reader can look
them up: device types and statuses are the DUIS 5.4 XSD enumerations
``DeviceType`` and ``DeviceStatus`` (reference/duis/xsd/DUIS Schema V5.4.xsd);
user roles are the SEC/DUIS User Role codes (IS, GS, ED, ...). The value of
each member is what the database stores, so renaming a member is a data
migration.
"""

from __future__ import annotations

from enum import StrEnum


class UserRole(StrEnum):
    """A DUIS User Role a user ID may act in (SEC Section A, DUIS request matrix)."""

    IMPORT_SUPPLIER = "IS"
    EXPORT_SUPPLIER = "ES"
    GAS_SUPPLIER = "GS"
    ELECTRICITY_DISTRIBUTOR = "ED"
    GAS_TRANSPORTER = "GT"
    REGISTERED_SUPPLIER_AGENT = "RSA"
    OTHER_USER = "OU"


#: The roles an MPID can have for registration: the supplier of an MPAN is an
#: Import Supplier, of an MPRN a Gas Supplier (ecos-domain.md §A1: 6.23 is
#: open to IS and GS only).
SUPPLIER_ROLES = frozenset({UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER})


class DeviceType(StrEnum):
    """DUIS ``DeviceType``."""

    ESME = "ESME"
    GSME = "GSME"
    GPF = "GPF"
    CHF = "CHF"
    HCALCS = "HCALCS"
    PPMID = "PPMID"
    IHD = "IHD"
    CAD = "CAD"


class DeviceStatus(StrEnum):
    """DUIS ``DeviceStatus`` (Smart Metering Inventory status)."""

    PENDING = "Pending"
    WHITELISTED = "Whitelisted"
    INSTALLED_NOT_COMMISSIONED = "InstalledNotCommissioned"
    COMMISSIONED = "Commissioned"
    DECOMMISSIONED = "Decommissioned"
    WITHDRAWN = "Withdrawn"
    SUSPENDED = "Suspended"
    RECOVERY = "Recovery"
    RECOVERED = "Recovered"


class CosCredentialState(StrEnum):
    """Which CoS party's certificate the meter's transitionalCoS cell holds.

    The DCC routes each 6.23 by this flag (ecos-domain.md §H.2): ``TCOS`` meters
    are served by the transitional CoS key, ``ECOS`` meters by the ECoS Party.
    """

    TCOS = "TCOS"
    ECOS = "ECOS"


class RequestStatus(StrEnum):
    """Where a DUIS request is in its lifecycle.

    The store records the state; the transition table lives with the decision
    code (``cos``/``service``), which moves requests with
    :meth:`RequestRepository.transition` (a compare-and-set).
    """

    RECEIVED = "Received"
    ACKNOWLEDGED = "Acknowledged"
    REJECTED = "Rejected"
    QUARANTINED = "Quarantined"
    QUEUED = "Queued"
    COMMAND_SENT = "CommandSent"
    FUTURE_DATED_PENDING = "FutureDatedPending"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class CommandStatus(StrEnum):
    """Where a GBCS command is.

    ``PREPARED``, ``SENT``, ``AWAITING_EXECUTION`` (a future-dated command the
    meter accepted) and ``OUTCOME_UNKNOWN`` (no answer: read the meter's
    credentials before any retry) are *in flight*: a credential-changing
    command in one of them blocks another for the same device.
    """

    PREPARED = "Prepared"
    SENT = "Sent"
    AWAITING_EXECUTION = "AwaitingExecution"
    OUTCOME_UNKNOWN = "OutcomeUnknown"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def in_flight(self) -> bool:
        return self in IN_FLIGHT_COMMAND_STATUSES


#: Statuses covered by the partial unique index ``uq_commands_in_flight``.
#: Changing this set needs a migration that recreates the index.
IN_FLIGHT_COMMAND_STATUSES = frozenset(
    {
        CommandStatus.PREPARED,
        CommandStatus.SENT,
        CommandStatus.AWAITING_EXECUTION,
        CommandStatus.OUTCOME_UNKNOWN,
    }
)


class OutboxKind(StrEnum):
    """What an outbox message carries for the user to pull."""

    RESPONSE = "Response"
    ALERT = "Alert"


class WorkStatus(StrEnum):
    """State of a work-queue item (see :mod:`openecos.store.work`)."""

    PENDING = "Pending"
    CLAIMED = "Claimed"
    DONE = "Done"
    FAILED = "Failed"
