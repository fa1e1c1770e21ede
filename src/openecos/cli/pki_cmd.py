"""``openecos pki``: the test PKI with the SMKI profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openecos.cli import CliError, one_line_errors
from openecos.eui import Eui64
from openecos.smki import sandbox_pki, write_test_pki

app = typer.Typer(help="Mint and inspect test PKIs with the SMKI certificate profile.")
out = Console(highlight=False)

# Test devices are numbered from here: the OUI-like prefix of RTDS's 00-DB-12-34-….
FIRST_DEVICE = Eui64.parse("00DB123400000001")


@app.command("init")
@one_line_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the PKI (must be empty).")],
    devices: Annotated[
        int, typer.Option(min=0, max=100_000, help="Device (DS and KA) certificates to mint.")
    ] = 4,
) -> None:
    """Mint a test PKI: root, organisation CA, device CA, the sandbox parties and devices.

    Writes PEM certificates and keys plus one index, pki.json, that the other
    commands (``--keystore DIR``) read.
    """
    if directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} is not empty; choose a new directory")
    pki = sandbox_pki()
    euis = [Eui64.from_int(int(FIRST_DEVICE) + n) for n in range(devices)]
    pki = pki.with_entries(*pki.issue_devices(euis))
    index = write_test_pki(pki, directory)

    table = Table(title=f"test PKI in {directory}", show_lines=False)
    for column in ("name", "kind", "entity / device", "role", "usage"):
        table.add_column(column)
    shown = [e for e in pki.all_entries if e.kind.value != "device"]
    for entry in shown:
        table.add_row(
            entry.name,
            entry.kind.value,
            entry.eui.duis if entry.eui else "",
            f"{entry.role.ou} {entry.role.name}" if entry.role is not None else "",
            entry.key_usage_name,
        )
    out.print(table)
    out.print(f"{devices} devices ({2 * devices} certificates) from {FIRST_DEVICE.duis}")
    out.print(f"index: {index}")
