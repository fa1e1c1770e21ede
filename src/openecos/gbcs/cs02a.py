"""CS02a "Provide Security Credential Details" values (message code 0x0008).

Theory of operation. CS02a asks a meter which remote-party certificates its
trust-anchor cells hold, role by role; the migration engine uses it to read a
meter's transitionalCoS cell before retrying a CS02b whose outcome is unknown.
Commands are unsigned (signature length ``00``) and MACed like CS02b; so are
the responses (RTDS 6.24.1). Structure, learnt from RTDS 6.24.1 and the public
gbcs-parser (names descriptive where GBCS text was not available)::

    ProvideSecurityCredentialDetailsCommand ::= SEQUENCE {
      authorisingRemotePartyTACellIdentifier  TrustAnchorCellIdentifier,
      remotePartyRoles                        SEQUENCE OF RemotePartyRole }
    ProvideSecurityCredentialDetailsResponse ::= SEQUENCE OF RemotePartyDetails
    RemotePartyDetails ::= SEQUENCE {
      remotePartyRole, statusCode ENUMERATED,
      currentSeqNumber INTEGER OPTIONAL,             -- present together with the cells
      trustAnchorCellDetails SEQUENCE OF TrustAnchorCellContents OPTIONAL }
    TrustAnchorCellContents ::= SEQUENCE {
      keyUsage, cellUsage DEFAULT management,
      subjectUniqueId OCTET STRING (8), subjectKeyIdentifier OCTET STRING (8) }

A role the meter has no anchor for comes back with status trustAnchorNotFound
and no further fields (RTDS 6.24.1 ERROR response).
"""

from __future__ import annotations

from dataclasses import dataclass

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole, StatusCode
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier


@dataclass(frozen=True, slots=True)
class ProvideSecurityCredentialDetailsCommand:
    authorising_remote_party_ta_cell: TrustAnchorCellIdentifier
    remote_party_roles: tuple[RemotePartyRole, ...]


@dataclass(frozen=True, slots=True)
class TrustAnchorCellContents:
    """What one cell holds: the certificate's subject EUI and subject key identifier."""

    key_usage: KeyUsage
    subject_unique_id: Eui64
    subject_key_identifier: bytes
    cell_usage: CellUsage = CellUsage.MANAGEMENT


@dataclass(frozen=True, slots=True)
class RemotePartyDetails:
    remote_party_role: RemotePartyRole
    status_code: StatusCode
    current_seq_number: int | None = None
    trust_anchor_cell_details: tuple[TrustAnchorCellContents, ...] | None = None


@dataclass(frozen=True, slots=True)
class ProvideSecurityCredentialDetailsResponse:
    remote_party_details: tuple[RemotePartyDetails, ...]
