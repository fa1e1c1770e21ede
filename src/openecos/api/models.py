"""The JSON shapes of the HTTP API (pydantic models, published in ``/openapi.json``).

Each model is a read-only view of a store record; EUIs are written as 16
upper-case hex digits, binary values as upper-case hex, times as ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    """Liveness and the store's reachability."""

    status: str = Field(description="`ok` when the store answered")
    schema_version: int = Field(description="The store's migrated schema version")
    worker_id: str = Field(description="This process's worker identity")


class UserMessage(BaseModel):
    """A DUIS response or alert for a user, as signed XML (consumed when read)."""

    message_id: int = Field(description="Increasing per store; messages come oldest first")
    kind: str = Field(description="`Response` or `Alert`")
    request_id: str | None = Field(description="The DUIS RequestID it concerns, if any")
    created_at: datetime
    body: str = Field(description="The signed DUIS `sr:Response` XML")


class CommandView(BaseModel):
    """A GBCS command the CoS Party sent for a request."""

    signer: str = Field(description="The CoS Party's entity EUI (Business Originator ID)")
    originator_counter: str = Field(description="GBCS originator counter (decimal string)")
    device: str
    message_code: str = Field(description="GBCS message code, e.g. 0x0107")
    status: str
    credential_changing: bool
    created_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None


class RequestView(BaseModel):
    """A DUIS service request and where it is in its lifecycle."""

    request_id: str
    originator: str
    target: str
    counter: str = Field(description="RequestID counter (decimal string; up to 2^64-1)")
    service_reference: str
    status: str = Field(description="Lifecycle state (see openecos.cos.lifecycle)")
    response_code: str | None
    execution_at: datetime | None
    cos_party: str | None = Field(description="Entity EUI of the CoS Party that signed")
    received_at: datetime
    updated_at: datetime | None
    commands: list[CommandView]


class CellView(BaseModel):
    """A trust-anchor cell the DCC believes a meter holds."""

    role: str
    key_usage: str
    cell_usage: str
    subject_eui: str
    subject_key_id: str
    certificate_sha256: str


class DeviceView(BaseModel):
    """An inventory device with its CoS credential state and cells."""

    eui: str
    device_type: str
    status: str
    mpxn: str | None
    manufacturer: str
    model: str
    firmware_version: str | None
    credential_state: str = Field(description="TCOS or ECOS: which CoS Party serves it")
    born_ecos: bool
    region: str | None = Field(default=None, description="GSP group _A ... _P, if known")
    in_flight_command: CommandView | None
    cells: list[CellView]


class AuditView(BaseModel):
    """One entry of the append-only audit log."""

    entry_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


class HeldRequestView(BaseModel):
    """A request held by Threshold Anomaly Detection."""

    request_id: str
    quarantine_event_ref: int = Field(description="The QuarantineEventRef of its alert")
    breach: str = Field(description="ADUserThresholdBreach or ADDCCThresholdBreach")
    quarantined_at: datetime


class Problem(BaseModel):
    """An error answer (RFC 9457-like)."""

    detail: str
