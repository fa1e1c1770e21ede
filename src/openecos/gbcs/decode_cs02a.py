"""Decoding the CS02a contents (RTDS 6.24.1; structure in :mod:`openecos.gbcs.cs02a`).

Same conventions as :mod:`openecos.gbcs.decode`, whose primitives it uses:
``(buf, pos, end) -> (value, offset after it)``, absolute offsets in errors.
"""

from __future__ import annotations

from openecos.gbcs._fast import constructor
from openecos.gbcs.cs02a import (
    ProvideSecurityCredentialDetailsCommand,
    ProvideSecurityCredentialDetailsResponse,
    RemotePartyDetails,
    TrustAnchorCellContents,
)
from openecos.gbcs.decode import (
    _STATUSES,
    ENUMERATED,
    INTEGER,
    KEY_ID_SIZE,
    OCTET_STRING,
    SEQUENCE,
    _cell,
    _code,
    _eui,
    _key_usage,
    _optional_cell_usage,
    _role,
    _sequence_of,
    _trailing,
    _whole,
)
from openecos.gbcs.tlv import read_octets, read_tlv, read_unsigned

_new_cs02a_command = constructor(ProvideSecurityCredentialDetailsCommand)
_new_cell_contents = constructor(TrustAnchorCellContents)
_new_party_details = constructor(RemotePartyDetails)
_new_cs02a_response = constructor(ProvideSecurityCredentialDetailsResponse)


# -- CS02a ------------------------------------------------------------------------------------


def _cs02a_command(
    buf: bytes, pos: int, end: int
) -> tuple[ProvideSecurityCredentialDetailsCommand, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    cell, at = _cell(buf, start, stop)
    roles, at = _sequence_of(buf, at, stop, _role)
    if at != stop:
        raise _trailing(at, stop)
    return _new_cs02a_command(cell, roles), stop


def _cell_contents(buf: bytes, pos: int, end: int) -> tuple[TrustAnchorCellContents, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    usage, at = _key_usage(buf, start, stop)
    cell_usage, at = _optional_cell_usage(buf, at, stop)
    subject, at = _eui(buf, at, stop)
    key_id, at = read_octets(buf, at, stop, OCTET_STRING, KEY_ID_SIZE)
    if at != stop:
        raise _trailing(at, stop)
    return _new_cell_contents(usage, subject, key_id, cell_usage), stop


def _party_details(buf: bytes, pos: int, end: int) -> tuple[RemotePartyDetails, int]:
    start, stop = read_tlv(buf, pos, end, SEQUENCE)
    role, at = _role(buf, start, stop)
    status, at = _code(_STATUSES, "status code", buf, at, stop, ENUMERATED)
    seq = None
    cells = None
    if at < stop:  # currentSeqNumber and the cell details come together
        seq, at = read_unsigned(buf, at, stop, INTEGER)
        cells, at = _sequence_of(buf, at, stop, _cell_contents)
        if at != stop:
            raise _trailing(at, stop)
    return _new_party_details(role, status, seq, cells), stop


def _cs02a_response(
    buf: bytes, pos: int, end: int
) -> tuple[ProvideSecurityCredentialDetailsResponse, int]:
    details, stop = _sequence_of(buf, pos, end, _party_details)
    return _new_cs02a_response(details), stop


def decode_provide_security_credential_details_command(
    data: bytes, start: int = 0, end: int | None = None
) -> ProvideSecurityCredentialDetailsCommand:
    return _whole(_cs02a_command, data, start, end)


def decode_provide_security_credential_details_response(
    data: bytes, start: int = 0, end: int | None = None
) -> ProvideSecurityCredentialDetailsResponse:
    return _whole(_cs02a_response, data, start, end)
