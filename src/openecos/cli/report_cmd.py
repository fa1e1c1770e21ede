"""``openecos report emrr``: the ECoS Migration Reporting Regime figures, JSON or CSV.

Counts are aggregated in SQL by the party registered for each meter's MPxN
now (:meth:`openecos.service.migration_desk.MigrationDesk.emrr_reports`);
``--supplier P`` reports that party's meters only; without it, the overall
report and one per supplier. Output goes to standard output or ``--output``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from openecos.cli import CliError, one_line_errors
from openecos.cli.migrate_cmd import SandboxOpt, StoreOpt, Target
from openecos.migration import render_csv, render_json
from openecos.service.clock import SystemClock
from openecos.service.migration_desk import MigrationDesk

app = typer.Typer(help="Reports: EMRR migration figures per supplier.")
out = Console(highlight=False, soft_wrap=True)


@app.command("emrr")
@one_line_errors
def emrr(
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    supplier: Annotated[
        str | None, typer.Option("--supplier", help="A supplier party ID: its meters only.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json | csv")] = "json",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Report date (ISO; default today, UTC).")
    ] = None,
    window_days: Annotated[int, typer.Option(min=1, max=365)] = 7,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """EMRR: meters by category and ineligible reason, daily migrations, a forecast."""
    if fmt not in ("json", "csv"):
        raise CliError("--format is json or csv")
    day = None if as_of is None else date.fromisoformat(as_of)
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        desk = MigrationDesk(opened, SystemClock())
        reports = desk.emrr_reports(
            suppliers=None if supplier is None else (supplier,),
            as_of=day,
            window_days=window_days,
        )
    text = render_json(*reports) if fmt == "json" else render_csv(*reports)
    if output is not None:
        output.write_text(text if text.endswith("\n") else text + "\n")
        return
    typer.echo(text.rstrip("\n"))
