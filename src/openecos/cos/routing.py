"""Which CoS Party serves a meter: the TCoS Party or the ECoS Party.

Theory of operation. A 6.23 command is signed by the Known Remote Party whose
certificate sits in the meter's transitionalCoS digital-signing trust anchor
cell (docs/ecos-domain.md §A4): the TCoS Party before migration, the ECoS
Party after (or from manufacture, for a born-ECoS meter). The inventory keeps
that as the device's :class:`~openecos.store.enums.CosCredentialState`
(§H.2); :func:`route` reads it. A :class:`CosParty` names the party, its
entity EUI (the GBCS Business Originator ID of its commands and the recipient
of the meters' answers) and the name of its signing key in a ``KeyStore``.
"""

from __future__ import annotations

from dataclasses import dataclass

from openecos.eui import Eui64
from openecos.store.enums import CosCredentialState
from openecos.store.records import Device


@dataclass(frozen=True, slots=True)
class CosParty:
    """A CoS Party: who signs 6.23 commands for the meters in one credential state."""

    name: str
    entity_eui: Eui64
    signing_key: str  # entry name of its transitionalCoS DS key in a KeyStore


@dataclass(frozen=True, slots=True)
class CosParties:
    """The two CoS Parties; ``tcos`` and ``ecos`` must have distinct entity EUIs."""

    tcos: CosParty
    ecos: CosParty

    def __post_init__(self) -> None:
        # Device answers are matched by the CoS Party they are addressed to (outcomes.py).
        if self.tcos.entity_eui == self.ecos.entity_eui:
            raise ValueError("the TCoS and ECoS Parties must have distinct entity EUIs")

    def for_state(self, state: CosCredentialState) -> CosParty:
        return self.ecos if state is CosCredentialState.ECOS else self.tcos

    def by_eui(self, eui: Eui64) -> CosParty | None:
        """The party with entity EUI ``eui`` (a device message's recipient), or None."""
        for party in (self.tcos, self.ecos):
            if party.entity_eui == eui:
                return party
        return None


def route(device: Device, parties: CosParties) -> CosParty:
    """The CoS Party whose key the meter trusts: by its transitionalCoS cell's holder."""
    return parties.for_state(device.credential_state)
