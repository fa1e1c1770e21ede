"""The default parties of a sandbox, minted on the test PKI.

Theory of operation: one table (``SANDBOX_PARTIES``) names every default
certificate: two suppliers, one of which holds two entity IDs, a network
operator, the DCC Access Control Broker (DS and KA), the TCoS Party and the
ECoS Party (each its own entity ID and a role-5 DS certificate), XML-signing
certificates for the users (role 0x87) and one for the DCC (role 0x89). The
entity IDs live under ``90-B3-D5-1F-40``, beside (never equal to) the ZAZ1 test
entities under ``90-B3-D5-1F-30``, so the two sets can be used side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openecos.eui import Eui64
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.smki.testpki import DEFAULT_VALID_FROM, PkiEntry, TestPki, create_test_pki

DS = KeyUsage.DIGITAL_SIGNATURE
KA = KeyUsage.KEY_AGREEMENT
MANAGEMENT = CellUsage.MANAGEMENT
TOP_UP = CellUsage.PREPAYMENT_TOP_UP

SUPPLIER_A = Eui64.parse("90B3D51F40010000")
SUPPLIER_A_SECOND = Eui64.parse("90B3D51F40010100")  # the second entity ID of supplier A
SUPPLIER_B = Eui64.parse("90B3D51F40020000")
NETWORK_OPERATOR = Eui64.parse("90B3D51F40030000")
ACCESS_CONTROL_BROKER = Eui64.parse("90B3D51F40000002")  # the DCC, as ZAZ1's ...30000002
TCOS_PARTY = Eui64.parse("90B3D51F40000004")
ECOS_PARTY = Eui64.parse("90B3D51F40000005")


@dataclass(frozen=True, slots=True)
class PartyCertificate:
    """One row of the default table: what to mint and under which name."""

    name: str
    eui: Eui64
    role: RemotePartyRole
    key_usage: KeyUsage
    cell_usage: CellUsage | None
    common_name: str | None = None


def _supplier(prefix: str, eui: Eui64, common_name: str) -> tuple[PartyCertificate, ...]:
    role = RemotePartyRole.SUPPLIER
    return (
        PartyCertificate(f"{prefix}-ds", eui, role, DS, MANAGEMENT, common_name),
        PartyCertificate(f"{prefix}-ka", eui, role, KA, MANAGEMENT),
        PartyCertificate(f"{prefix}-ka-topup", eui, role, KA, TOP_UP),
        PartyCertificate(f"{prefix}-xml-sign", eui, RemotePartyRole.XML_SIGN, DS, None),
    )


SANDBOX_PARTIES: tuple[PartyCertificate, ...] = (
    *_supplier("supplier-a", SUPPLIER_A, "OPENECOS SUPPLIER A"),
    *_supplier("supplier-a2", SUPPLIER_A_SECOND, "OPENECOS SUPPLIER A"),
    *_supplier("supplier-b", SUPPLIER_B, "OPENECOS SUPPLIER B"),
    PartyCertificate(
        "network-operator-ds", NETWORK_OPERATOR, RemotePartyRole.NETWORK_OPERATOR, DS, MANAGEMENT
    ),
    PartyCertificate(
        "network-operator-ka", NETWORK_OPERATOR, RemotePartyRole.NETWORK_OPERATOR, KA, MANAGEMENT
    ),
    PartyCertificate(
        "network-operator-xml-sign", NETWORK_OPERATOR, RemotePartyRole.XML_SIGN, DS, None
    ),
    PartyCertificate(
        "acb-ds", ACCESS_CONTROL_BROKER, RemotePartyRole.ACCESS_CONTROL_BROKER, DS, MANAGEMENT
    ),
    PartyCertificate(
        "acb-ka", ACCESS_CONTROL_BROKER, RemotePartyRole.ACCESS_CONTROL_BROKER, KA, MANAGEMENT
    ),
    PartyCertificate("tcos-ds", TCOS_PARTY, RemotePartyRole.TRANSITIONAL_COS, DS, MANAGEMENT),
    PartyCertificate("ecos-ds", ECOS_PARTY, RemotePartyRole.TRANSITIONAL_COS, DS, MANAGEMENT),
    PartyCertificate("dcc-xml-sign", ACCESS_CONTROL_BROKER, RemotePartyRole.DSP_XML_SIGN, DS, None),
)


def issue_party_certificates(
    pki: TestPki, rows: tuple[PartyCertificate, ...]
) -> tuple[PkiEntry, ...]:
    """Mints one organisation certificate per row (the PKI itself is unchanged)."""
    return tuple(
        pki.issue_organisation(
            row.name,
            eui=row.eui,
            role=row.role,
            key_usage=row.key_usage,
            cell_usage=row.cell_usage,
            common_name=row.common_name,
        )
        for row in rows
    )


def sandbox_pki(*, valid_from: datetime = DEFAULT_VALID_FROM) -> TestPki:
    """A new test PKI holding every certificate of ``SANDBOX_PARTIES``."""
    pki = create_test_pki(valid_from=valid_from)
    return pki.with_entries(*issue_party_certificates(pki, SANDBOX_PARTIES))
