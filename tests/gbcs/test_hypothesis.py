"""Property tests: every CS02 value shape round-trips; hostile bytes raise only DecodeError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openecos.eui import Eui64
from openecos.gbcs import (
    AlertCode,
    AuthorisingRemotePartyControl,
    CellUsage,
    Content,
    CraFlag,
    CredentialsReplacementMode,
    DecodeError,
    ExecutionOutcome,
    GeneralSigningApdu,
    KeyUsage,
    LengthStyle,
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyDetails,
    RemotePartyRole,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    SeqNumberUsage,
    SpecialistSeqNumber,
    StatusCode,
    TrustAnchorCellContents,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsCommand,
    UpdateSecurityCredentialsResponse,
    decode_frame,
    decode_payload,
    decode_provide_security_credential_details_command,
    decode_provide_security_credential_details_response,
    decode_update_security_credentials_alert,
    decode_update_security_credentials_command,
    decode_update_security_credentials_response,
    encode_content,
    encode_general_ciphering,
)
from openecos.gbcs.security import der_signature
from openecos.gbcs.tlv import tlv
from tests.reference import rtds_files, rtds_hex

U64 = st.one_of(
    st.integers(0, (1 << 64) - 1),
    st.sampled_from([0, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, (1 << 63), (1 << 64) - 1]),
)
# Sizes around the length-form boundaries: 127/128, 255/256.
SIZES = st.one_of(
    st.integers(0, 300), st.sampled_from([125, 126, 127, 128, 129, 253, 254, 255, 256])
)
EUIS = st.binary(min_size=8, max_size=8).map(Eui64)
KEY_IDS = st.binary(min_size=8, max_size=8)
TIMES = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda t: t.replace(microsecond=0))
CERTIFICATES = SIZES.flatmap(lambda n: st.binary(min_size=n, max_size=n)).map(
    lambda body: tlv(0x30, body)
)


def _tuples(strategy: st.SearchStrategy[object], max_size: int = 4) -> st.SearchStrategy[tuple]:  # type: ignore[type-arg]
    return st.lists(strategy, max_size=max_size).map(tuple)


CELLS = st.builds(
    TrustAnchorCellIdentifier,
    st.sampled_from(RemotePartyRole),
    st.sampled_from(KeyUsage),
    st.sampled_from(CellUsage),
)
SPECIALIST = st.builds(SpecialistSeqNumber, st.sampled_from(SeqNumberUsage), U64)
CHANGES = st.builds(
    RemotePartySeqNumberChange,
    st.sampled_from(RemotePartyRole),
    U64,
    st.none() | _tuples(SPECIALIST),
)
CONTROLS = st.builds(
    AuthorisingRemotePartyControl,
    st.sampled_from(CredentialsReplacementMode),
    U64,
    st.none() | CELLS,
    st.none() | SIZES.flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.booleans(),
    st.none() | U64,
    st.none() | _tuples(SPECIALIST),
    st.none() | _tuples(CHANGES, 8),
)
COMMANDS = st.builds(
    UpdateSecurityCredentialsCommand,
    CONTROLS,
    _tuples(st.builds(TrustAnchorReplacement, CERTIFICATES, CELLS), 3),
    _tuples(CERTIFICATES, 2),
    st.none() | TIMES,
)
OUTCOMES = st.builds(
    ReplacementOutcome, CELLS, st.sampled_from(StatusCode), EUIS, KEY_IDS, EUIS, KEY_IDS
)
EXECUTION_OUTCOMES = st.builds(
    ExecutionOutcome,
    U64,
    st.sampled_from(CredentialsReplacementMode),
    _tuples(CHANGES),
    _tuples(OUTCOMES, 6),
)
RESPONSES = st.builds(UpdateSecurityCredentialsResponse, st.none() | EXECUTION_OUTCOMES)
ALERTS = st.builds(
    UpdateSecurityCredentialsAlert, st.sampled_from(AlertCode), TIMES, EXECUTION_OUTCOMES
)
CS02A_COMMANDS = st.builds(
    ProvideSecurityCredentialDetailsCommand, CELLS, _tuples(st.sampled_from(RemotePartyRole), 200)
)
CELL_CONTENTS = st.builds(
    TrustAnchorCellContents, st.sampled_from(KeyUsage), EUIS, KEY_IDS, st.sampled_from(CellUsage)
)
PARTY_DETAILS = st.one_of(
    st.builds(RemotePartyDetails, st.sampled_from(RemotePartyRole), st.sampled_from(StatusCode)),
    st.builds(
        RemotePartyDetails,
        st.sampled_from(RemotePartyRole),
        st.sampled_from(StatusCode),
        U64,
        _tuples(CELL_CONTENTS, 6),
    ),
)
CS02A_RESPONSES = st.builds(ProvideSecurityCredentialDetailsResponse, _tuples(PARTY_DETAILS, 5))

DECODERS: dict[type, Callable[[bytes], Content]] = {
    UpdateSecurityCredentialsCommand: decode_update_security_credentials_command,
    UpdateSecurityCredentialsResponse: decode_update_security_credentials_response,
    UpdateSecurityCredentialsAlert: decode_update_security_credentials_alert,
    ProvideSecurityCredentialDetailsCommand: decode_provide_security_credential_details_command,
    ProvideSecurityCredentialDetailsResponse: decode_provide_security_credential_details_response,
}
CONTENTS = st.one_of(COMMANDS, RESPONSES, ALERTS, CS02A_COMMANDS, CS02A_RESPONSES)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONTENTS, st.sampled_from(LengthStyle))
def test_every_content_value_round_trips_in_both_length_styles(
    value: Content, style: LengthStyle
) -> None:
    encoded = encode_content(value, style)
    assert DECODERS[type(value)](encoded) == value


@settings(max_examples=200, deadline=None)
@given(CONTENTS)
def test_device_style_never_writes_81_lengths_and_der_never_writes_82_00(value: Content) -> None:
    der = encode_content(value)
    device = encode_content(value, LengthStyle.DEVICE)
    # Same value, and the two differ only by one byte per 128-255 length.
    assert DECODERS[type(value)](der) == DECODERS[type(value)](device)
    assert len(device) >= len(der)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CraFlag),
    U64,
    EUIS,
    EUIS,
    st.integers(0, 0xFFFF),
    SIZES.flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.none() | st.binary(min_size=12, max_size=12),
    st.binary(max_size=300),
    st.none() | st.just(b"") | st.binary(min_size=64, max_size=64),
    st.booleans(),
)
def test_every_general_signing_apdu_round_trips_bare_and_wrapped(
    cra: CraFlag,
    counter: int,
    originator: Eui64,
    recipient: Eui64,
    code: int,
    content: bytes,
    date_time: bytes | None,
    supplementary: bytes,
    signature: bytes | None,
    wrapped: bool,
) -> None:
    apdu = GeneralSigningApdu(
        cra, counter, originator, recipient, code, content, date_time, supplementary, signature
    )
    encoded = apdu.encode()
    raw = encode_general_ciphering(encoded, bytes(12)) if wrapped else encoded
    frame = decode_frame(raw)
    assert frame.apdu == apdu
    assert bytes(frame.signed_bytes) == apdu.signed_bytes()
    assert (frame.ciphering is not None) == wrapped


def _decode_everything(data: bytes) -> None:
    """Decodes as a frame and as every content type; anything but DecodeError escapes."""
    with contextlib.suppress(DecodeError):
        decode_payload(decode_frame(data))
    for decode in DECODERS.values():
        try:
            value = decode(data)
        except DecodeError:
            continue
        # What decodes re-encodes, and decodes to the same value.
        assert decode(encode_content(value)) == value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    _decode_everything(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_behind_a_valid_header_raise_only_decode_errors(body: bytes) -> None:
    for cra in CraFlag:
        for code in (0x0008, 0x00CB, 0x0106, 0x0107):
            apdu = GeneralSigningApdu(cra, 1, Eui64(bytes(8)), Eui64(bytes(8)), code, body)
            with contextlib.suppress(DecodeError):
                decode_payload(decode_frame(apdu.encode()))


VECTORS = [rtds_hex(folder, name) for folder, name in rtds_files()]


@st.composite
def mutated_vectors(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VECTORS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif at < len(data):
            if kind == "flip":
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set":
                data[at] = draw(
                    st.sampled_from([0x00, 0x02, 0x30, 0x7F, 0x80, 0x81, 0x82, 0x83, 0xFF])
                )
            else:
                del data[at]
    return bytes(data)


@settings(max_examples=500, deadline=None)
@given(mutated_vectors())
def test_mutated_rtds_vectors_raise_only_decode_errors(data: bytes) -> None:
    _decode_everything(data)
    try:
        frame = decode_frame(data)
        value = decode_payload(frame)
    except DecodeError:
        return
    for style in LengthStyle:
        assert DECODERS[type(value)](encode_content(value, style)) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_the_der_signature_conversion_matches_cryptography(signature: bytes) -> None:
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    assert der_signature(signature) == encode_dss_signature(r, s)
