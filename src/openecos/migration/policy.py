"""EMEHRA error classes and their retry policies.

Theory of operation. Every way a migration attempt can fail is one
:class:`ErrorClass`, and each class has one :class:`RetryPolicy`:

- ``max_attempts``: how many 0x0106 commands, in all, a meter may be sent
  while its latest failure is of this class (1: never retried
  automatically; the meter goes to the exceptions queue);
- exponential backoff ``base_delay * multiplier**(attempt-1)`` capped at
  ``max_delay``, with "equal jitter": the delay is drawn in
  ``[d * (1 - jitter), d]``. The draw is a hash of (seed, meter, attempt),
  not a random generator, so the same run replays the same schedule and two
  workers agree on it, while meters that failed together spread out;
- ``read_credentials_first``: the outcome is not known (no answer, an answer
  that cannot be read or believed), so before any retry the meter's
  transitionalCoS cell is read (CS02a): retrying blindly a 0x0106 that did in
  fact succeed would be signed by a key the meter no longer trusts, and
  could never succeed (shared/docs/architecture.md, flow 2).

The defaults (:data:`DEFAULT_POLICIES`) are this project's reading, since the
EMEHRA text is not public (docs/ecos-domain.md, Gaps): transient conditions
(busy meter, lost message) are retried; certificate and anchor failures are
systemic (the same certificate fails the same way again) and go straight to
the exceptions queue. An :class:`EmehraPolicy` bundles the per-class policies
with the credentials-read budget and the response deadlines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from openecos.eui import Eui64
from openecos.migration.errors import InvalidMigrationInput


class ErrorClass(StrEnum):
    """Why a migration attempt did not end in a confirmed migration."""

    NO_RESPONSE = "no response from the meter before the deadline"
    DELIVERY_FAILED = "the command could not be delivered to the meter"
    METER_BUSY = "the meter reported resourcesBusy or insufficientMemory"
    BAD_CERTIFICATE = "the meter refused the ECoS certificate (badCertificate)"
    NO_TRUST_ANCHOR = "the ECoS certificate does not chain to the meter's root (noTrustAnchor)"
    TRUST_ANCHOR_NOT_FOUND = "the meter has no transitionalCoS cell (trustAnchorNotFound)"
    MALFORMED_RESPONSE = "a response that cannot be decoded"
    SIGNATURE_INVALID = "a response whose device signature does not verify"
    RESPONSE_MISMATCH = "a response that does not answer the command as sent"
    REJECTED = "the meter reported another failure status"
    UNEXPECTED_CREDENTIALS = "the transitionalCoS cell holds neither TCoS nor ECoS"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one error class is retried (see module doc)."""

    max_attempts: int
    base_delay: timedelta = timedelta(minutes=30)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(hours=24)
    jitter: float = 0.5
    read_credentials_first: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidMigrationInput("max_attempts counts the first attempt: at least 1")
        if self.base_delay < timedelta(0) or self.max_delay < self.base_delay:
            raise InvalidMigrationInput("0 <= base_delay <= max_delay")
        if self.multiplier < 1.0:
            raise InvalidMigrationInput("the backoff multiplier is at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise InvalidMigrationInput("jitter is a fraction in [0, 1]")

    def nominal_delay(self, attempt: int) -> timedelta:
        """The delay before retry number ``attempt`` (1 after the first failure), unjittered."""
        if attempt < 1:
            raise InvalidMigrationInput("attempt numbers start at 1")
        # Cap in seconds first: multiplier**attempt outgrows what a timedelta can hold.
        seconds = self.base_delay.total_seconds() * self.multiplier ** min(attempt - 1, 64)
        return timedelta(seconds=min(self.max_delay.total_seconds(), seconds))

    def delay_bounds(self, attempt: int) -> tuple[timedelta, timedelta]:
        """The smallest and largest delay :meth:`delay` can return for ``attempt``."""
        nominal = self.nominal_delay(attempt)
        return nominal * (1.0 - self.jitter), nominal

    def delay(self, attempt: int, *, seed: int, device: Eui64) -> timedelta:
        """The jittered delay: reproducible from (seed, device, attempt)."""
        nominal = self.nominal_delay(attempt)
        fraction = jitter_fraction(seed, device, attempt)
        return nominal * (1.0 - self.jitter * fraction)


def jitter_fraction(seed: int, device: Eui64, attempt: int) -> float:
    """A number in [0, 1) fixed by its arguments (BLAKE2b, not a random generator)."""
    data = seed.to_bytes(16, "big", signed=True) + device.value + attempt.to_bytes(8, "big")
    digest = hashlib.blake2b(data, digest_size=8, person=b"openecos-emehra").digest()
    return int.from_bytes(digest, "big") / float(1 << 64)


_M = timedelta(minutes=1)
_H = timedelta(hours=1)

#: This project's default per-class policies (EMEHRA itself is not public).
DEFAULT_POLICIES: Mapping[ErrorClass, RetryPolicy] = MappingProxyType(
    {
        ErrorClass.NO_RESPONSE: RetryPolicy(4, 30 * _M, 2.0, 24 * _H, 0.5, True),
        ErrorClass.DELIVERY_FAILED: RetryPolicy(6, 15 * _M, 2.0, 12 * _H, 0.5, False),
        ErrorClass.METER_BUSY: RetryPolicy(6, 5 * _M, 3.0, 6 * _H, 0.5, False),
        ErrorClass.BAD_CERTIFICATE: RetryPolicy(1),
        ErrorClass.NO_TRUST_ANCHOR: RetryPolicy(1),
        ErrorClass.TRUST_ANCHOR_NOT_FOUND: RetryPolicy(1),
        ErrorClass.MALFORMED_RESPONSE: RetryPolicy(3, 30 * _M, 2.0, 12 * _H, 0.5, True),
        ErrorClass.SIGNATURE_INVALID: RetryPolicy(3, 30 * _M, 2.0, 12 * _H, 0.5, True),
        ErrorClass.RESPONSE_MISMATCH: RetryPolicy(3, 30 * _M, 2.0, 12 * _H, 0.5, True),
        ErrorClass.REJECTED: RetryPolicy(2, 1 * _H, 2.0, 24 * _H, 0.5, False),
        ErrorClass.UNEXPECTED_CREDENTIALS: RetryPolicy(1),
    }
)


@dataclass(frozen=True, slots=True)
class EmehraPolicy:
    """Everything the per-meter lifecycle needs to decide what happens next.

    ``response_timeout``: how long to wait for a 0x0106 or CS02a response;
    ``read_delay``: the wait before the first credentials read of an unknown
    outcome (late answers can still arrive); ``read_policy``: attempts and
    backoff of credentials reads within one unknown episode (when spent, the
    meter is an exception with its state unknown); ``review_interval``: when an
    operator should look again at a meter waiting for one (exceptions, holds,
    field visits), so even those states carry a next time;
    ``reassess_interval``: when an ineligible meter is assessed again;
    ``max_total_attempts``: a cap over all classes together.
    """

    policies: Mapping[ErrorClass, RetryPolicy] = field(default_factory=lambda: DEFAULT_POLICIES)
    response_timeout: timedelta = timedelta(minutes=10)
    read_delay: timedelta = timedelta(minutes=15)
    read_policy: RetryPolicy = RetryPolicy(3, 15 * _M, 2.0, 6 * _H, 0.5)
    review_interval: timedelta = timedelta(days=2)
    reassess_interval: timedelta = timedelta(days=1)
    max_total_attempts: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        missing = [c.name for c in ErrorClass if c not in self.policies]
        if missing:
            raise InvalidMigrationInput(f"no retry policy for {', '.join(missing)}")
        if self.max_total_attempts < 1:
            raise InvalidMigrationInput("max_total_attempts is at least 1")
        for name in ("response_timeout", "read_delay", "review_interval", "reassess_interval"):
            if getattr(self, name) <= timedelta(0):
                raise InvalidMigrationInput(f"{name} must be positive")

    def policy(self, error: ErrorClass) -> RetryPolicy:
        return self.policies[error]
