"""EUI-64 identifiers: the entity IDs of SEC parties and the IDs of devices.

GBCS carries them as 8 raw bytes (system titles); SMKI certificates carry them
in x500UniqueIdentifier or hardwareModuleName; DUIS writes them as sixteen hex
digits in pairs separated by hyphens (``90-B3-D5-1F-30-01-00-00``). One value
type serves all three so that comparisons never depend on the spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openecos.errors import OpenEcosError

_HEX_FORMS = re.compile(r"^[0-9A-Fa-f]{16}$|^([0-9A-Fa-f]{2}[-:]){7}[0-9A-Fa-f]{2}$")


class InvalidEui(OpenEcosError, ValueError):
    """Text or bytes that are not an EUI-64."""


@dataclass(frozen=True, slots=True, order=True)
class Eui64:
    """An EUI-64 as its 8 bytes."""

    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != 8:
            raise InvalidEui(f"an EUI-64 is 8 bytes, got {self.value!r}")

    @classmethod
    def parse(cls, text: str) -> Eui64:
        """Reads ``90B3D51F30010000``, ``90-B3-D5-1F-30-01-00-00`` or the ``:`` form."""
        candidate = text.strip()
        if not _HEX_FORMS.match(candidate):
            raise InvalidEui(f"not an EUI-64: {text!r}")
        return cls(bytes.fromhex(candidate.replace("-", "").replace(":", "")))

    @classmethod
    def from_int(cls, number: int) -> Eui64:
        if not 0 <= number < 1 << 64:
            raise InvalidEui(f"an EUI-64 is 64 bits, got {number}")
        return cls(number.to_bytes(8, "big"))

    @property
    def hex(self) -> str:
        """Sixteen upper-case hex digits, as in certificate names and file names."""
        return self.value.hex().upper()

    @property
    def duis(self) -> str:
        """The DUIS spelling (``EUI`` simple type): hyphen-separated pairs."""
        return "-".join(f"{b:02X}" for b in self.value)

    def __int__(self) -> int:
        return int.from_bytes(self.value, "big")

    def __str__(self) -> str:
        return self.duis

    def __repr__(self) -> str:
        return f"Eui64({self.duis})"
