"""DUIS RequestID / ResponseID values and the per-originator counter rule.

A RequestID is ``<Business Originator ID>:<Business Target ID>:<counter>``:
two EUI-64s in the hyphenated DUIS spelling and a decimal counter in
0..2^64-1 (the XSD's ``RequestIDType`` pattern, docs/duis-xmldsig-smki.md
§1.1). The ResponseID has the same shape with the two EUIs swapped.

Replay protection is "the counter strictly increases per originator" (§1.1,
recommendation): :func:`check_counter_increases` is the pure rule; the store
keeps the last value seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openecos.duis.errors import CounterNotIncreasing, InvalidRequestId
from openecos.eui import Eui64

_EUI = r"[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}"
# The XSD's alternation allows "0" or a decimal without leading zeros up to
# 18446744073709551615; the same here, with the bound checked by value.
_REQUEST_ID = re.compile(rf"({_EUI}):({_EUI}):(0|[1-9][0-9]{{0,19}})")

COUNTER_MAX = (1 << 64) - 1


@dataclass(frozen=True, slots=True, order=True)
class RequestId:
    """A DUIS RequestID: who sent it, which device it targets, the sender's counter."""

    originator: Eui64
    target: Eui64
    counter: int

    def __post_init__(self) -> None:
        if not 0 <= self.counter <= COUNTER_MAX:
            raise InvalidRequestId(f"RequestID counter {self.counter} is outside 0..2^64-1")

    @classmethod
    def parse(cls, text: str) -> RequestId:
        """Reads ``90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1006``."""
        # xs:token: the XSD collapses surrounding whitespace before matching.
        match = _REQUEST_ID.fullmatch(text.strip(" \t\r\n")) if isinstance(text, str) else None
        if match is None:
            raise InvalidRequestId(f"not a DUIS RequestID: {text!r}")
        originator, target, counter = match.groups()
        return cls(Eui64.parse(originator), Eui64.parse(target), int(counter))

    @property
    def duis(self) -> str:
        return f"{self.originator.duis}:{self.target.duis}:{self.counter}"

    def response_id(self) -> str:
        """The ResponseID that answers this request: the two EUIs swapped (§1.1)."""
        return f"{self.target.duis}:{self.originator.duis}:{self.counter}"

    def __str__(self) -> str:
        return self.duis


def check_counter_increases(request_id: RequestId, last_seen: int | None) -> None:
    """Raises :class:`CounterNotIncreasing` unless the counter exceeds ``last_seen``.

    ``last_seen`` is the highest counter accepted so far from
    ``request_id.originator`` (None when the originator has never been seen).
    """
    if last_seen is not None and request_id.counter <= last_seen:
        raise CounterNotIncreasing(
            f"RequestID counter {request_id.counter} from {request_id.originator} does not "
            f"exceed the last accepted counter {last_seen}"
        )
