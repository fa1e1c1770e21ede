"""A compact, versioned byte form of a simulated meter's state, for the store.

Theory of operation. A :class:`~openecos.device.MeterState` holds shared
certificate objects; the stored form names each certificate by the SHA-256
of its DER (the certificates themselves are stored once, see
:mod:`openecos.store.simulated`) and writes everything else as JSON: seq
numbers, the alert counter and the held future-dated command with its
pre-judged replacements. :func:`encode_meter` returns the blob and the DERs it
refers to; :func:`decode_meter` takes a function from fingerprint to DER and
interns certificates through the profile's cache, so decoded meters share
objects as commissioned ones do. Pure: no I/O beyond the callback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from hashlib import sha256
from typing import Any

from openecos.device import AnchorCertificate, CertificateCache, MeterState
from openecos.device.state import PendingCommand, PlannedReplacement
from openecos.errors import OpenEcosError
from openecos.eui import Eui64
from openecos.gbcs.codes import (
    CellUsage,
    CredentialsReplacementMode,
    KeyUsage,
    RemotePartyRole,
    SeqNumberUsage,
    StatusCode,
)
from openecos.gbcs.cs02b import (
    RemotePartySeqNumberChange,
    SpecialistSeqNumber,
    TrustAnchorCellIdentifier,
)

FORMAT_VERSION = 1


class MeterStateCorrupt(OpenEcosError):
    """A stored meter state that cannot be read back (a bug or a tampered database)."""


def fingerprint(der: bytes) -> bytes:
    return sha256(der).digest()


def _cell(cell: TrustAnchorCellIdentifier) -> list[Any]:
    return [int(cell.remote_party_role), cell.key_usage.value, int(cell.cell_usage)]


def _read_cell(value: Any) -> TrustAnchorCellIdentifier:
    role, usage, cell_usage = value
    return TrustAnchorCellIdentifier(RemotePartyRole(role), KeyUsage(usage), CellUsage(cell_usage))


def encode_meter(state: MeterState) -> tuple[bytes, dict[bytes, bytes]]:
    """The blob for ``state`` and the certificates it names (fingerprint → DER)."""
    certificates: dict[bytes, bytes] = {}

    def ref(anchor: AnchorCertificate | None) -> str | None:
        if anchor is None:
            return None
        key = fingerprint(anchor.der)
        certificates[key] = anchor.der
        return key.hex()

    pending: dict[str, Any] | None = None
    if state.pending is not None:
        p = state.pending
        pending = {
            "originator": p.originator.hex,
            "message_code": p.message_code,
            "mode": int(p.mode),
            "seq": p.seq_number,
            "execution": p.execution_date_time.isoformat(),
            "replacements": [
                [_cell(r.cell), int(r.status), ref(r.certificate)] for r in p.replacements
            ],
            "changes": [
                [
                    int(c.remote_party_role),
                    c.floor_seq_number,
                    None
                    if c.specialist_floor_seq_numbers is None
                    else [
                        [int(s.seq_number_usage), s.seq_number]
                        for s in c.specialist_floor_seq_numbers
                    ],
                ]
                for c in p.seq_number_changes
            ],
        }
    document = {
        "v": FORMAT_VERSION,
        "device": state.device.hex,
        "cells": [ref(c) for c in state.cells],
        "seq": list(state.seq_numbers),
        "alert": state.alert_counter,
        "pending": pending,
    }
    return json.dumps(document, separators=(",", ":")).encode(), certificates


def decode_meter(
    blob: bytes, certificate: Callable[[bytes], bytes], cache: CertificateCache
) -> MeterState:
    """The meter stored as ``blob``; ``certificate(fingerprint)`` returns a DER."""
    try:
        document = json.loads(blob)
        if document.get("v") != FORMAT_VERSION:
            raise MeterStateCorrupt(f"unknown meter state format {document.get('v')!r}")

        def anchor(ref: str | None) -> AnchorCertificate | None:
            return None if ref is None else cache.certificate(certificate(bytes.fromhex(ref)))

        pending = None
        p = document["pending"]
        if p is not None:
            pending = PendingCommand(
                originator=Eui64.parse(p["originator"]),
                message_code=int(p["message_code"]),
                mode=CredentialsReplacementMode(p["mode"]),
                seq_number=int(p["seq"]),
                execution_date_time=datetime.fromisoformat(p["execution"]),
                replacements=tuple(
                    PlannedReplacement(_read_cell(c), StatusCode(s), anchor(r))
                    for c, s, r in p["replacements"]
                ),
                seq_number_changes=tuple(
                    RemotePartySeqNumberChange(
                        RemotePartyRole(role),
                        int(floor),
                        None
                        if specialist is None
                        else tuple(
                            SpecialistSeqNumber(SeqNumberUsage(u), int(n)) for u, n in specialist
                        ),
                    )
                    for role, floor, specialist in p["changes"]
                ),
            )
        return MeterState(
            device=Eui64.parse(document["device"]),
            cells=cache.cells(tuple(anchor(ref) for ref in document["cells"])),
            seq_numbers=cache.seq_numbers(tuple(int(n) for n in document["seq"])),
            alert_counter=int(document["alert"]),
            pending=pending,
        )
    except MeterStateCorrupt:
        raise
    except (ValueError, KeyError, TypeError, OpenEcosError) as exc:
        raise MeterStateCorrupt(f"stored meter state cannot be read: {exc}") from exc
