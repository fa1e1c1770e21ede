"""Hostile input: whatever bytes arrive, the meter returns a transition, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openecos.device import Transition, handle
from openecos.gbcs import build_command, decode_frame
from openecos.gbcs.codes import KeyUsage, MessageCode
from openecos.smki.sandbox import TCOS_PARTY
from tests.device.sandbox import DEVICE, NOW, sandbox

_BOX = sandbox()
_VALID = _BOX.command(seq=100)
_FUTURE = _BOX.command(seq=100, execution=NOW.replace(year=2027))


def _check(transition: Transition) -> None:
    assert isinstance(transition, Transition)
    if transition.rejection is not None:
        assert transition.outputs == ()
        assert transition.state is _BOX.meter


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_are_only_ever_rejected(data: bytes) -> None:
    transition = handle(_BOX.meter, data, NOW, _BOX.profile)
    assert transition.rejection is not None
    _check(transition)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_VALID, _FUTURE]),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_commands_never_crash_the_meter(
    command: bytes, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(command)
    for position, value in edits:
        data[position % len(data)] = value
    _check(handle(_BOX.meter, bytes(data), NOW, _BOX.profile))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([_VALID, _FUTURE]), st.integers(0, 4000), st.integers(0, 4000))
def test_truncated_or_spliced_commands_never_crash_the_meter(
    command: bytes, cut: int, splice: int
) -> None:
    cut %= len(command)
    _check(handle(_BOX.meter, command[:cut], NOW, _BOX.profile))
    _check(handle(_BOX.meter, command[:cut] + command[splice % len(command) :], NOW, _BOX.profile))


def _content_of(command: bytes) -> bytes:
    return decode_frame(command).apdu.content


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_content_of(_VALID), _content_of(_FUTURE)]),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_authentic_commands_with_mutated_content_never_crash_the_meter(
    content: bytes, edits: list[tuple[int, int]]
) -> None:
    # Signed and MACed correctly, so the hostile content reaches every check past the MAC.
    data = bytearray(content)
    for position, value in edits:
        data[position % len(data)] = value
    command = build_command(
        originator=TCOS_PARTY,
        recipient=DEVICE,
        originator_counter=100,
        message_code=MessageCode.CS02B_SUPPLIER_BY_TRANS_COS,
        content=bytes(data),
        signer=_BOX.key("tcos-ds"),
        key_agreement=_BOX.key("acb-ka"),
        recipient_key_agreement_key=_BOX.profile.keys.public_key(DEVICE, KeyUsage.KEY_AGREEMENT),  # type: ignore[attr-defined]
    )
    _check(handle(_BOX.meter, command, NOW, _BOX.profile))
