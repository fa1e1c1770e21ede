"""The meter's trust-anchor cells and seq numbers, and certificates shared between meters.

Theory of operation. A simulated meter has a fixed set of trust-anchor cells
(docs/gbcs-cs02b.md §4.1 roles; §9 for the supplier's three): the layout is
:data:`METER_CELLS`, and a meter's cells are a tuple in that order holding an
:class:`AnchorCertificate` or ``None``. It also keeps one seq number per
remote party that can authorise a CS02b command (:data:`SEQ_NUMBER_ROLES`)
and the supplier's prepayment top-up specialist seq number, as a tuple of
ints in the order of :data:`SEQ_NUMBER_SLOTS`.

A fleet of a million meters mostly holds the same few certificates, so
certificates are *interned*: :class:`CertificateCache` parses each DER once
and hands every meter the same :class:`AnchorCertificate` object; tuples of
cells and of seq numbers are interned the same way, so meters in the same
credential state share one tuple. Interning is an optimisation, never a
correctness matter: the caches are bounded (hostile input cannot grow them)
and, once full, return fresh objects that compare by content where it matters
(cells by identity of their interned certificates is only ever a speed-up).
The cache is not thread-safe; a fleet lives on one event loop.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier
from openecos.smki.certificate import SmkiCertificate

DS = KeyUsage.DIGITAL_SIGNATURE
KA = KeyUsage.KEY_AGREEMENT
Role = RemotePartyRole


def _cell(
    role: RemotePartyRole, usage: KeyUsage, top_up: bool = False
) -> TrustAnchorCellIdentifier:
    cell_usage = CellUsage.PREPAYMENT_TOP_UP if top_up else CellUsage.MANAGEMENT
    return TrustAnchorCellIdentifier(role, usage, cell_usage)


ROOT_CELL = _cell(Role.ROOT, DS)
"""The root anchor; GBCS names it by role 0. Its key usage here is nominal (a CA key)."""
RECOVERY_CELL = _cell(Role.RECOVERY, DS)
SUPPLIER_DS_CELL = _cell(Role.SUPPLIER, DS)
SUPPLIER_KA_CELL = _cell(Role.SUPPLIER, KA)
SUPPLIER_KA_TOP_UP_CELL = _cell(Role.SUPPLIER, KA, top_up=True)
NETWORK_OPERATOR_DS_CELL = _cell(Role.NETWORK_OPERATOR, DS)
NETWORK_OPERATOR_KA_CELL = _cell(Role.NETWORK_OPERATOR, KA)
ACB_DS_CELL = _cell(Role.ACCESS_CONTROL_BROKER, DS)
ACB_KA_CELL = _cell(Role.ACCESS_CONTROL_BROKER, KA)
TRANSITIONAL_COS_CELL = _cell(Role.TRANSITIONAL_COS, DS)
WAN_PROVIDER_CELL = _cell(Role.WAN_PROVIDER, DS)

METER_CELLS: Final[tuple[TrustAnchorCellIdentifier, ...]] = (
    ROOT_CELL,
    RECOVERY_CELL,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    NETWORK_OPERATOR_DS_CELL,
    NETWORK_OPERATOR_KA_CELL,
    ACB_DS_CELL,
    ACB_KA_CELL,
    TRANSITIONAL_COS_CELL,
    WAN_PROVIDER_CELL,
)
"""Every cell a simulated meter has, in the order of ``MeterState.cells``."""

CELL_SLOTS: Final[dict[TrustAnchorCellIdentifier, int]] = {c: i for i, c in enumerate(METER_CELLS)}

SEQ_NUMBER_ROLES: Final[tuple[RemotePartyRole, ...]] = (
    Role.RECOVERY,
    Role.SUPPLIER,
    Role.NETWORK_OPERATOR,
    Role.ACCESS_CONTROL_BROKER,
    Role.TRANSITIONAL_COS,
    Role.WAN_PROVIDER,
)
"""Remote parties with a seq number on the meter (replay protection, §8.4 [G])."""
SEQ_NUMBER_SLOTS: Final[dict[RemotePartyRole, int]] = {r: i for i, r in enumerate(SEQ_NUMBER_ROLES)}
TOP_UP_SEQ_SLOT: Final[int] = len(SEQ_NUMBER_ROLES)
"""The supplier's prepayment top-up specialist seq number follows the per-role ones."""
SEQ_NUMBER_COUNT: Final[int] = TOP_UP_SEQ_SLOT + 1

NO_SUBJECT_ID: Final[Eui64] = Eui64(bytes(8))
"""Reported as the existing subject of an empty cell (a choice: GBCS text not available)."""
NO_KEY_ID: Final[bytes] = bytes(8)


@dataclass(frozen=True, slots=True, eq=False)
class AnchorCertificate:
    """A certificate as a meter holds it in a cell: DER, parsed view, and what outcomes report.

    Compared by identity: the :class:`CertificateCache` hands out one object per DER.
    """

    der: bytes
    certificate: SmkiCertificate
    subject_unique_id: Eui64
    """x500UniqueIdentifier (organisation) or hardwareModuleName; zeros when there is none."""
    subject_key_id: bytes
    """The 8-byte SKI (SMKI method 2), zeros when absent: what ReplacementOutcome carries."""

    @property
    def public_key(self) -> EllipticCurvePublicKey:
        return self.certificate.public_key

    @property
    def role(self) -> RemotePartyRole | None:
        return self.certificate.role

    @classmethod
    def of(cls, certificate: SmkiCertificate) -> AnchorCertificate:
        key_id = certificate.subject_key_identifier
        return cls(
            certificate.der,
            certificate,
            certificate.eui or NO_SUBJECT_ID,
            key_id if key_id is not None and len(key_id) == 8 else NO_KEY_ID,
        )


class CertificateCache:
    """Interns certificates (by DER) and cell and seq-number tuples; bounded, see module doc."""

    __slots__ = ("_cells", "_certificates", "_limit", "_seq_numbers", "_verdicts")

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._certificates: dict[bytes, AnchorCertificate] = {}
        self._cells: dict[tuple[int, ...], tuple[AnchorCertificate | None, ...]] = {}
        self._seq_numbers: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._verdicts: dict[Hashable, object] = {}

    def verdict(self, key: Hashable) -> object | None:
        """A remembered time-independent path verdict (see :mod:`openecos.device.rules`)."""
        return self._verdicts.get(key)

    def remember_verdict(self, key: Hashable, verdict: object) -> None:
        if len(self._verdicts) < self._limit:
            self._verdicts[key] = verdict

    def __len__(self) -> int:
        return len(self._certificates)

    def certificate(self, der: bytes | SmkiCertificate) -> AnchorCertificate:
        """The shared :class:`AnchorCertificate` for ``der``.

        Raises :class:`openecos.smki.CertificateError` when the bytes are not a
        readable certificate.
        """
        key = der.der if isinstance(der, SmkiCertificate) else bytes(der)
        found = self._certificates.get(key)
        if found is not None:
            return found
        parsed = der if isinstance(der, SmkiCertificate) else SmkiCertificate.from_der(key)
        anchor = AnchorCertificate.of(parsed)
        if len(self._certificates) < self._limit:
            self._certificates[key] = anchor
        return anchor

    def cells(
        self, cells: tuple[AnchorCertificate | None, ...]
    ) -> tuple[AnchorCertificate | None, ...]:
        """One shared tuple per combination of (interned) certificates."""
        key = tuple(0 if c is None else id(c) for c in cells)
        found = self._cells.get(key)
        if found is not None and all(a is b for a, b in zip(found, cells, strict=True)):
            return found
        if found is None and len(self._cells) < self._limit:
            self._cells[key] = cells
        return cells

    def seq_numbers(self, values: tuple[int, ...]) -> tuple[int, ...]:
        found = self._seq_numbers.get(values)
        if found is not None:
            return found
        if len(self._seq_numbers) < self._limit:
            self._seq_numbers[values] = values
        return values
