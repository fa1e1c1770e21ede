"""The decoders' fast constructor builds values indistinguishable from __init__'s."""

from __future__ import annotations

import dataclasses

import pytest

from openecos.eui import Eui64
from openecos.gbcs import KeyUsage, RemotePartyRole, TrustAnchorCellIdentifier
from openecos.gbcs._fast import constructor
from openecos.gbcs.codes import CellUsage


def test_a_fast_built_value_is_the_frozen_class_equal_hashable_and_immutable() -> None:
    make = constructor(TrustAnchorCellIdentifier)
    args = (RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP)
    fast = make(*args)
    slow = TrustAnchorCellIdentifier(*args)
    assert type(fast) is TrustAnchorCellIdentifier
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.key_usage = KeyUsage.DIGITAL_SIGNATURE  # type: ignore[misc]


def test_ordering_and_methods_of_the_class_apply() -> None:
    make = constructor(Eui64)
    assert make(b"\x00" * 8) < Eui64(b"\x01" * 8)
    assert make(b"\x90\xb3\xd5\x1f\x30\x00\x00\x04").duis == "90-B3-D5-1F-30-00-00-04"
