"""GBCS: General-Signing and General-Ciphering frames, CS02b, signatures and MACs."""

from openecos.gbcs.codes import (
    AlertCode,
    CellUsage,
    CraFlag,
    CredentialsReplacementMode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    StatusCode,
)

__all__ = [
    "AlertCode",
    "CellUsage",
    "CraFlag",
    "CredentialsReplacementMode",
    "KeyUsage",
    "MessageCode",
    "RemotePartyRole",
    "StatusCode",
]
