"""The errors of the system of record.

Every failure a repository reports on purpose is a :class:`StoreError`. The
subclasses name the rule that refused the write (an overlap, a replayed
counter, a command already in flight), so the caller can answer with the
right DUIS response code without parsing database messages.
"""

from __future__ import annotations

from openecos.errors import OpenEcosError


class StoreError(OpenEcosError):
    """Base class of every error the store raises on purpose."""


class InvalidRecord(StoreError, ValueError):
    """A record value breaks a rule of its type (format, range, timezone).

    ``field`` names the offending attribute so an importer can report it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(StoreError, LookupError):
    """The row asked for does not exist."""


class Conflict(StoreError):
    """A write refused because it contradicts what is already stored."""


class DuplicateKey(Conflict):
    """A row with the same key (RequestID, EUI, MPID, issuer+serial, ...) exists."""


class ReferenceMissing(Conflict):
    """A write names a row that does not exist (unknown party, MPID, device...)."""


class OverlappingRegistration(Conflict):
    """A registration interval would overlap another for the same MPxN."""


class CommandInFlight(Conflict):
    """A credential-changing command is already in flight for the device.

    Invariant (docs/architecture.md): at most one per meter; the database's
    partial unique index is the final arbiter, so racing writers get this too.
    """


class StaleState(Conflict):
    """A compare-and-set found a different current state than expected."""


class CounterNotAdvanced(Conflict):
    """A DUIS RequestID counter is not strictly greater than the last accepted one.

    DUIS: the counter part of a RequestID must increase per originator, which
    protects against replay and reordering (docs/duis-xmldsig-smki.md).
    """

    def __init__(self, originator: str, counter: int, last: int) -> None:
        super().__init__(
            f"RequestID counter {counter} from {originator} is not greater than {last}"
        )
        self.counter = counter
        self.last = last


class CounterExhausted(StoreError):
    """A 64-bit counter has reached 2**64 - 1 and cannot be advanced."""


class LeaseLost(Conflict):
    """A work claim's lease expired and another worker took the item over."""
