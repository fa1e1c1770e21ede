"""``openecos sandbox``: create a sandbox (test PKI, populated store, meter estate)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from openecos.cli import one_line_errors
from openecos.sandbox import (
    DEFAULT_ECOS_FRACTION,
    DEFAULT_METERS,
    DEFAULT_SEED,
    MANIFEST,
    create_sandbox,
)

app = typer.Typer(help="Create sandboxes: a test PKI, a populated store and simulated meters.")
out = Console(highlight=False)


@app.command("init")
@one_line_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the sandbox (new or empty).")],
    meters: Annotated[
        int, typer.Option(min=0, max=1_000_000, help="Meters (ESME and GSME) to commission.")
    ] = DEFAULT_METERS,
    ecos_fraction: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share of meters already holding the ECoS Party's certificate."
        ),
    ] = DEFAULT_ECOS_FRACTION,
    seed: Annotated[int, typer.Option(help="Seed of the estate (same seed, same meters).")] = (
        DEFAULT_SEED
    ),
    store_url: Annotated[
        str | None,
        typer.Option(
            help="Put the store here (e.g. postgresql+psycopg://...) instead of store.db."
        ),
    ] = None,
) -> None:
    """Create a sandbox: PKI, participants, registrations, inventory and meter estate.

    Every file is plain text (PEM, CSV, JSON) beside the store; sandbox.json
    indexes them, and --keystore DIR/pki gives the other commands its keys.
    """
    started = time.perf_counter()
    sandbox = create_sandbox(
        directory, meters=meters, ecos_fraction=ecos_fraction, seed=seed, store_url=store_url
    )
    elapsed = time.perf_counter() - started
    manifest = sandbox.manifest
    counts = manifest.counts

    parties = Table(title=f"sandbox in {directory}")
    # PKI entries: <keys>-ds, -ka, -ka-topup (suppliers) and <keys>-xml-sign.
    for column in ("party", "user ID", "roles", "MPIDs", "keys"):
        parties.add_column(column, no_wrap=column != "MPIDs")
    for party in manifest.parties:
        for user in party.users:
            mpids = [m.mpid for m in party.mpids if m.user_id == user.user_id]
            parties.add_row(
                party.party_id,
                user.user_id.hex,
                ";".join(sorted(r.value for r in user.roles)),
                " ".join(mpids),
                user.pki_prefix,
            )
    out.print(parties)

    estate = Table(show_header=True)
    for column in ("meters", "ESME", "GSME", "TCoS", "ECoS", "registrations", "certificates"):
        estate.add_column(column, justify="right")
    estate.add_row(
        *(
            str(counts.get(k, 0))
            for k in ("meters", "esme", "gsme", "tcos", "ecos", "registrations", "certificates")
        )
    )
    out.print(estate)
    out.print(f"store: {sandbox.store_url}", soft_wrap=True)
    out.print(f"keys: --keystore {directory / manifest.pki}", soft_wrap=True)
    out.print(f"manifest: {directory / MANIFEST} ({elapsed:.1f} s)", soft_wrap=True)
