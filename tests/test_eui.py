"""EUI-64 parsing and spelling (the DUIS, certificate and GBCS forms agree)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openecos.eui import Eui64, InvalidEui


def test_duis_and_hex_forms_name_the_same_eui() -> None:
    a = Eui64.parse("90-B3-D5-1F-30-01-00-00")
    b = Eui64.parse("90b3d51f30010000")
    assert a == b
    assert a.hex == "90B3D51F30010000"
    assert a.duis == "90-B3-D5-1F-30-01-00-00"
    assert int(a) == 0x90B3D51F30010000


@pytest.mark.parametrize("text", ["", "90B3D51F300100", "90B3D51F3001000G", "90-B3D51F30010000"])
def test_not_an_eui_is_rejected(text: str) -> None:
    with pytest.raises(InvalidEui):
        Eui64.parse(text)


def test_wrong_length_bytes_are_rejected() -> None:
    with pytest.raises(InvalidEui):
        Eui64(b"\x00" * 7)


@given(st.binary(min_size=8, max_size=8))
def test_every_spelling_round_trips(raw: bytes) -> None:
    eui = Eui64(raw)
    assert Eui64.parse(eui.duis) == eui
    assert Eui64.parse(eui.hex) == eui
    assert Eui64.from_int(int(eui)) == eui
