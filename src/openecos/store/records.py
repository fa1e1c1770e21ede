"""Frozen records that go in and come out of the repositories.

Each record checks its own invariants in ``__post_init__`` and raises
:class:`~openecos.store.errors.InvalidRecord` naming the field, so a bad value
is refused before it reaches SQL and the CSV importer can report the column.
Datetimes must be timezone-aware and are normalised to UTC; 64-bit counters
are unsigned (``0 <= n < 2**64``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, MessageCode, RemotePartyRole
from openecos.store.enums import (
    CommandStatus,
    CosCredentialState,
    DeviceStatus,
    DeviceType,
    OutboxKind,
    RequestStatus,
    UserRole,
)
from openecos.store.errors import InvalidRecord

#: GB's 14 GSP groups (the distribution areas), the values of ``Device.region``. There
#: is no ``_I`` or ``_O``.
GSP_GROUPS = ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")

U64_MAX = (1 << 64) - 1

_MPAN = re.compile(r"[0-9]{13}")
_MPRN = re.compile(r"[0-9]{6,10}")
_MPID = re.compile(r"[A-Z0-9]{4}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]*")
_SERVICE_REFERENCE = re.compile(r"[0-9]{1,2}(\.[0-9]{1,3}){1,3}")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def utc(name: str, value: object) -> datetime:
    """The UTC form of an aware datetime; naive datetimes are refused."""
    if not isinstance(value, datetime):
        raise InvalidRecord(name, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecord(name, "datetime must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _opt_utc(name: str, value: object) -> datetime | None:
    return None if value is None else utc(name, value)


def u64(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U64_MAX:
        raise InvalidRecord(name, f"expected an unsigned 64-bit integer, got {value!r}")
    return value


def _text(name: str, value: object, *, min_len: int = 1, max_len: int = 255) -> None:
    if not isinstance(value, str):
        raise InvalidRecord(name, f"expected text, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise InvalidRecord(name, f"length must be {min_len}..{max_len}, got {len(value)}")
    if not _NAME.fullmatch(value):
        raise InvalidRecord(name, "control characters are not allowed")


def _member(name: str, value: object, kind: type[Any]) -> None:
    if not isinstance(value, kind):
        raise InvalidRecord(name, f"expected {kind.__name__}, got {value!r}")


def _bytes(name: str, value: object, *, allow_empty: bool = False) -> None:
    if not isinstance(value, bytes) or (not value and not allow_empty):
        raise InvalidRecord(name, "expected non-empty bytes")


def validate_mpxn(value: object, name: str = "mpxn") -> str:
    """An MPAN (13 digits) or an MPRN (6 to 10 digits); the two never collide."""
    if not isinstance(value, str) or not (_MPAN.fullmatch(value) or _MPRN.fullmatch(value)):
        raise InvalidRecord(name, f"not an MPAN (13 digits) or MPRN (6-10 digits): {value!r}")
    return value


def is_mpan(mpxn: str) -> bool:
    return len(mpxn) == 13


def validate_mpid(value: object, name: str = "mpid") -> str:
    """A market participant ID: four upper-case letters or digits."""
    if not isinstance(value, str) or not _MPID.fullmatch(value):
        raise InvalidRecord(name, f"not an MPID (4 upper-case letters/digits): {value!r}")
    return value


def normalise_issuer_name(text: str) -> str:
    """A comparison key for an RFC 2253/4514 issuer name.

    XMLDSig ``X509IssuerName`` spellings differ in the space after ``,`` and
    around ``=`` (docs/duis-xmldsig-smki.md §4), and attribute types are case
    insensitive. RDN order and value case are kept.
    """
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    out = []
    for part in parts:
        attr, sep, val = part.partition("=")
        if not sep:
            raise InvalidRecord("issuer_name", f"not an RFC 4514 name: {text!r}")
        out.append(f"{attr.strip().upper()}={val.strip()}")
    return ",".join(out)


# --- parties, users, MPIDs and certificates --------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """A SEC party (a supplier company, a network operator, the DCC...)."""

    party_id: str
    name: str

    def __post_init__(self) -> None:
        _text("party_id", self.party_id, max_len=64)
        _text("name", self.name)


@dataclass(frozen=True, slots=True)
class PartyUser:
    """A DUIS user ID (an EUI-64) of a party and the user roles it may act in.

    One party may hold several user IDs (the "split supplier" case,
    ecos-domain.md §S), each with its own XML-signing certificates.
    """

    user_id: Eui64
    party_id: str
    roles: frozenset[UserRole]

    def __post_init__(self) -> None:
        _member("user_id", self.user_id, Eui64)
        _text("party_id", self.party_id, max_len=64)
        if not isinstance(self.roles, frozenset) or not self.roles:
            raise InvalidRecord("roles", "a user needs at least one role (a frozenset)")
        for role in self.roles:
            _member("roles", role, UserRole)


@dataclass(frozen=True, slots=True)
class Mpid:
    """A market participant ID, held by one party through one of its user IDs.

    ``role`` is the market role (IS for an electricity supplier MPID, GS for
    gas); the user must hold that role (enforced by a foreign key).
    """

    mpid: str
    party_id: str
    user_id: Eui64
    role: UserRole

    def __post_init__(self) -> None:
        validate_mpid(self.mpid)
        _text("party_id", self.party_id, max_len=64)
        _member("user_id", self.user_id, Eui64)
        _member("role", self.role, UserRole)


@dataclass(frozen=True, slots=True)
class KnownCertificate:
    """An SMKI certificate the DCC knows, as DER plus the fields it is looked up by.

    The fields are given by the caller (the ``smki`` part parses certificates);
    the store does not parse DER. ``serial`` is the positive serial number;
    ``issuer_name`` an RFC 4514 string, compared through
    :func:`normalise_issuer_name`. Device certificates have no role.
    """

    der: bytes
    issuer_name: str
    serial: int
    subject_eui: Eui64 | None
    role: RemotePartyRole | None
    key_usage: KeyUsage

    def __post_init__(self) -> None:
        _bytes("der", self.der)
        _text("issuer_name", self.issuer_name, max_len=1024)
        normalise_issuer_name(self.issuer_name)
        if not isinstance(self.serial, int) or isinstance(self.serial, bool):
            raise InvalidRecord("serial", "expected an integer")
        if not 0 <= self.serial < 1 << 168:  # RFC 5280 §4.1.2.2: at most 20 octets
            raise InvalidRecord("serial", "serial must be 0..2**168")
        if self.subject_eui is not None:
            _member("subject_eui", self.subject_eui, Eui64)
        if self.role is not None:
            _member("role", self.role, RemotePartyRole)
        _member("key_usage", self.key_usage, KeyUsage)

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the DER (unique per certificate)."""
        return sha256(self.der).digest()


# --- registration data -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """The registered supplier of an MPxN over ``[effective_from, effective_to)``.

    ``effective_to`` is ``None`` for an open interval. Intervals are half-open,
    so a change of supplier at instant T ends the old one at T and starts the
    new one at T with no gap and no overlap.
    """

    mpxn: str
    supplier_mpid: str
    effective_from: datetime
    effective_to: datetime | None = None

    def __post_init__(self) -> None:
        validate_mpxn(self.mpxn)
        validate_mpid(self.supplier_mpid, "supplier_mpid")
        _set(self, "effective_from", utc("effective_from", self.effective_from))
        _set(self, "effective_to", _opt_utc("effective_to", self.effective_to))
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise InvalidRecord("effective_to", "must be after effective_from")

    def covers(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)


@dataclass(frozen=True, slots=True)
class RegisteredSupplier:
    """Answer to "who supplies MPxN X at T": the registration, its MPID's user and party."""

    registration: Registration
    user_id: Eui64
    party_id: str
    role: UserRole


# --- devices ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustAnchorCell:
    """A trust-anchor cell the DCC believes a meter holds (GBCS §4.3.2)."""

    role: RemotePartyRole
    key_usage: KeyUsage
    cell_usage: CellUsage
    certificate_der: bytes
    subject_eui: Eui64
    ski: bytes

    def __post_init__(self) -> None:
        _member("role", self.role, RemotePartyRole)
        _member("key_usage", self.key_usage, KeyUsage)
        _member("cell_usage", self.cell_usage, CellUsage)
        _bytes("certificate_der", self.certificate_der)
        _member("subject_eui", self.subject_eui, Eui64)
        _bytes("ski", self.ski)


@dataclass(frozen=True, slots=True)
class Device:
    """A device in the Smart Metering Inventory, with its CoS credential state.

    ``born_ecos`` marks a device manufactured with the ECoS certificate in its
    transitionalCoS cell (it never needs migration).
    """

    eui: Eui64
    device_type: DeviceType
    status: DeviceStatus
    mpxn: str | None
    manufacturer: str
    model: str
    firmware_version: str | None
    credential_state: CosCredentialState
    born_ecos: bool = False
    region: str | None = None
    """The GSP group of the meter's distribution area (``_A`` … ``_P``), if known."""

    def __post_init__(self) -> None:
        _member("eui", self.eui, Eui64)
        if self.region is not None and self.region not in GSP_GROUPS:
            raise InvalidRecord("region", "expected a GSP group _A ... _P (no _I or _O)")
        _member("device_type", self.device_type, DeviceType)
        _member("status", self.status, DeviceStatus)
        if self.mpxn is not None:
            validate_mpxn(self.mpxn)
        _text("manufacturer", self.manufacturer, max_len=30)  # DUIS DeviceManufacturer
        _text("model", self.model, max_len=30)  # DUIS DeviceModel
        if self.firmware_version is not None:
            _text("firmware_version", self.firmware_version, max_len=8)  # DUIS FirmwareVersion
        _member("credential_state", self.credential_state, CosCredentialState)
        if not isinstance(self.born_ecos, bool):
            raise InvalidRecord("born_ecos", "expected a bool")
        if self.born_ecos and self.credential_state is not CosCredentialState.ECOS:
            raise InvalidRecord("credential_state", "a born-ECoS device is in state ECOS")


# --- requests, commands, outbox, audit --------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A DUIS service request as received, and where it is in its lifecycle.

    The DUIS RequestID is ``originator:target:counter``; :attr:`request_id`
    gives its canonical spelling (upper-case hex), which is the unique key.
    """

    originator: Eui64
    target: Eui64
    counter: int
    service_reference: str
    service_reference_variant: str
    received_at: datetime
    raw_xml: bytes
    status: RequestStatus = RequestStatus.RECEIVED
    execution_at: datetime | None = None
    response_code: str | None = None
    cos_party: Eui64 | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _member("originator", self.originator, Eui64)
        _member("target", self.target, Eui64)
        u64("counter", self.counter)
        for name in ("service_reference", "service_reference_variant"):
            if not _SERVICE_REFERENCE.fullmatch(str(getattr(self, name))):
                raise InvalidRecord(name, f"not a service reference: {getattr(self, name)!r}")
        _set(self, "received_at", utc("received_at", self.received_at))
        _bytes("raw_xml", self.raw_xml)
        _member("status", self.status, RequestStatus)
        _set(self, "execution_at", _opt_utc("execution_at", self.execution_at))
        if self.response_code is not None:
            _text("response_code", self.response_code, max_len=8)
        if self.cos_party is not None:
            _member("cos_party", self.cos_party, Eui64)
        updated = self.received_at if self.updated_at is None else self.updated_at
        _set(self, "updated_at", utc("updated_at", updated))

    @property
    def request_id(self) -> str:
        return f"{self.originator.duis}:{self.target.duis}:{self.counter}"


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A GBCS command, keyed by its signer and originator counter.

    GBCS responses carry the originator counter back, and every signer's
    counters are reserved once (:class:`SigningCounterRepository`), so
    ``(signer, originator_counter)`` identifies the command and matches its
    response.
    """

    signer: Eui64
    originator_counter: int
    device: Eui64
    message_code: MessageCode
    payload: bytes
    created_at: datetime
    credential_changing: bool = True
    request_id: str | None = None
    status: CommandStatus = CommandStatus.PREPARED
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    response: bytes | None = None

    def __post_init__(self) -> None:
        _member("signer", self.signer, Eui64)
        u64("originator_counter", self.originator_counter)
        _member("device", self.device, Eui64)
        _member("message_code", self.message_code, MessageCode)
        _bytes("payload", self.payload)
        _set(self, "created_at", utc("created_at", self.created_at))
        if not isinstance(self.credential_changing, bool):
            raise InvalidRecord("credential_changing", "expected a bool")
        if self.request_id is not None:
            _text("request_id", self.request_id, max_len=80)
        _member("status", self.status, CommandStatus)
        _set(self, "sent_at", _opt_utc("sent_at", self.sent_at))
        _set(self, "answered_at", _opt_utc("answered_at", self.answered_at))
        if self.response is not None:
            _bytes("response", self.response, allow_empty=True)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A DUIS response or alert waiting for (or already pulled by) a user."""

    message_id: int
    user_id: Eui64
    kind: OutboxKind
    body: bytes
    created_at: datetime
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log."""

    entry_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
