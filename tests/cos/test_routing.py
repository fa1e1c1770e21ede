"""Routing a 6.23 to the TCoS or the ECoS Party by the meter's CoS credential state."""

from __future__ import annotations

import pytest

from openecos.cos import CosParties, CosParty, read_device_message, route
from openecos.eui import Eui64
from openecos.store.enums import CosCredentialState
from tests.cos.rtds import ECOS, IMMEDIATE_RESPONSE, PARTIES, TCOS, device
from tests.reference import RTDS_623, rtds_hex


def test_a_tcos_meter_goes_to_the_tcos_party() -> None:
    party = route(device(credential_state=CosCredentialState.TCOS), PARTIES)
    assert party is PARTIES.tcos
    assert party.entity_eui == TCOS


def test_an_ecos_meter_goes_to_the_ecos_party() -> None:
    party = route(device(credential_state=CosCredentialState.ECOS), PARTIES)
    assert party is PARTIES.ecos
    assert party.entity_eui == ECOS


def test_a_born_ecos_meter_goes_to_the_ecos_party() -> None:
    born = device(credential_state=CosCredentialState.ECOS, born_ecos=True)
    assert route(born, PARTIES) is PARTIES.ecos


def test_answers_are_attributed_to_the_party_they_are_addressed_to() -> None:
    # RTDS meters answer the TCoS entity; swapping roles routes the same bytes to "ECoS".
    swapped = CosParties(
        tcos=CosParty("new TCoS", Eui64.parse("90B3D51F300000AA"), "k"), ecos=PARTIES.tcos
    )
    received = read_device_message(rtds_hex(RTDS_623, IMMEDIATE_RESPONSE), swapped)
    assert received.cos_party is swapped.ecos


def test_the_two_parties_must_differ() -> None:
    with pytest.raises(ValueError):
        CosParties(tcos=PARTIES.tcos, ecos=CosParty("ECoS", TCOS, "other-key"))
