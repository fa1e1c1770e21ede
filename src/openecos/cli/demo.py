"""``openecos demo``: the main job on the embedded default (software keys).

What exists so far, end to end and for real: mint a test PKI with the SMKI
profile, build the CS02b 0x0107 command that a change of supplier sends
(supplier B's certificates into the meter's supplier cells, signed by the TCoS
Party through a KeyStore, MACed by the ACB), then decode the bytes and verify
the signature and the MAC from the certificates alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openecos.cli import CliError, one_line_errors
from openecos.cli.gbcs_cmd import Verdict, check_mac, check_signature
from openecos.eui import Eui64
from openecos.gbcs import (
    AuthorisingRemotePartyControl,
    CellUsage,
    CredentialsReplacementMode,
    KeyUsage,
    RemotePartyRole,
    RemotePartySeqNumberChange,
    SeqNumberUsage,
    SpecialistSeqNumber,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsCommand,
    build_command,
    decode_frame,
    decode_payload,
)
from openecos.keys import open_keystore
from openecos.smki import sandbox_pki, write_test_pki
from openecos.smki.sandbox import ACCESS_CONTROL_BROKER, SUPPLIER_B, TCOS_PARTY

out = Console(highlight=False)

DEMO_METER = Eui64.parse("00DB123400000001")
SUPPLIER_CELLS = (
    TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.DIGITAL_SIGNATURE),
    TrustAnchorCellIdentifier(RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT),
    TrustAnchorCellIdentifier(
        RemotePartyRole.SUPPLIER, KeyUsage.KEY_AGREEMENT, CellUsage.PREPAYMENT_TOP_UP
    ),
)


@one_line_errors
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to write the test PKI (default: a new temporary one)."),
    ] = None,
) -> None:
    """Run the demonstration: test PKI, a signed CS02b 0x0107, decoded and verified."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="openecos-demo-"))
    elif directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} is not empty; choose a new directory")

    out.rule("[bold]1. A test PKI with the SMKI profile")
    pki = sandbox_pki()
    pki = pki.with_entries(*pki.issue_devices([DEMO_METER]))
    write_test_pki(pki, directory)
    out.print(f"{len(pki.all_entries)} certificates and keys written to {directory}")
    keys = open_keystore([directory])

    out.rule("[bold]2. CS02b 0x0107 supplierByTransCoS, signed by the TCoS Party")
    tcos = keys.lookup(TCOS_PARTY, KeyUsage.DIGITAL_SIGNATURE, RemotePartyRole.TRANSITIONAL_COS)
    acb = keys.lookup(
        ACCESS_CONTROL_BROKER, KeyUsage.KEY_AGREEMENT, RemotePartyRole.ACCESS_CONTROL_BROKER
    )
    meter_ka = keys.find(eui=DEMO_METER, key_usage=KeyUsage.KEY_AGREEMENT)[0]
    supplier_b = [
        keys.lookup(
            SUPPLIER_B, cell.key_usage, RemotePartyRole.SUPPLIER, cell_usage=cell.cell_usage
        )
        for cell in SUPPLIER_CELLS
    ]
    counter = 1
    command = UpdateSecurityCredentialsCommand(
        authorising_remote_party_control=AuthorisingRemotePartyControl(
            credentials_replacement_mode=CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS,
            authorising_remote_party_seq_number=counter,
            authorising_remote_party_ta_cell=TrustAnchorCellIdentifier(
                RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE
            ),
            other_remote_party_seq_number_changes=(
                RemotePartySeqNumberChange(
                    RemotePartyRole.SUPPLIER,
                    0,
                    (SpecialistSeqNumber(SeqNumberUsage.PREPAYMENT_TOP_UP, 0),),
                ),
            ),
        ),
        replacements=tuple(
            TrustAnchorReplacement(_der(handle.certificate_der), cell)
            for handle, cell in zip(supplier_b, SUPPLIER_CELLS, strict=True)
        ),
        certification_path=tuple(c.der for c in pki.organisation_path),
    )
    frame_bytes = build_command(
        originator=TCOS_PARTY,
        recipient=DEMO_METER,
        originator_counter=counter,
        message_code=CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS.message_code,
        content=command,
        signer=tcos,
        key_agreement=acb,
        recipient_key_agreement_key=meter_ka.public_key(),
    )
    out.print(f"{len(frame_bytes)} bytes: {frame_bytes[:24].hex(' ').upper()} …")

    out.rule("[bold]3. Decoded from the bytes and verified from the certificates")
    frame = decode_frame(frame_bytes)
    content = decode_payload(frame)
    assert isinstance(content, UpdateSecurityCredentialsCommand)
    signature, mac = check_signature(frame, keys), check_mac(frame, keys)
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    apdu = frame.apdu
    table.add_row("message code", f"0x{apdu.message_code:04X}")
    table.add_row("originator", f"{apdu.originator} (TCoS Party, counter {counter})")
    table.add_row("recipient", f"{apdu.recipient} (meter)")
    for replacement in content.replacements:
        cell = replacement.target_trust_anchor_cell
        table.add_row(
            "replacement",
            f"{cell.remote_party_role.name} {cell.key_usage.value} {cell.cell_usage.name}",
        )
    table.add_row("signature", f"{signature.verdict.value}: {signature.detail}")
    table.add_row("MAC", f"{mac.verdict.value}: {mac.detail}")
    out.print(table)
    if signature.verdict is not Verdict.VALID or mac.verdict is not Verdict.VALID:
        raise CliError("the demo command did not verify")
    out.print("[green]ok[/green]: built, signed, MACed, decoded and verified")


def _der(certificate: bytes | None) -> bytes:
    if certificate is None:
        raise CliError("a supplier key in the PKI has no certificate")
    return certificate
