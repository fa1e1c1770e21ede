"""The ``openecos`` command line (typer + rich).

Theory of operation: each sub-command is a thin edge over the library. It
reads files and options, calls pure code, and prints. Every error OpenECoS
raises on purpose (and the usual file errors) becomes one line on standard
error and a non-zero exit; a traceback means a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from openecos.errors import OpenEcosError

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="openecos",
    help="OpenECoS: the Enduring Change of Supplier service of GB smart metering.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class CliError(OpenEcosError):
    """A problem with what the user asked for, told in one line."""


def one_line_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turns expected failures into ``error: <reason>`` and exit status 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (OpenEcosError, OSError, ValueError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            err.print(f"[red]error:[/red] {message}")
            raise typer.Exit(2) from None

    return wrapper


def _register() -> None:
    from openecos.cli import duis_cmd, gbcs_cmd, pki_cmd, sandbox_cmd

    app.add_typer(pki_cmd.app, name="pki")
    app.add_typer(gbcs_cmd.app, name="gbcs")
    app.add_typer(sandbox_cmd.app, name="sandbox")
    app.add_typer(duis_cmd.app, name="duis")
    from openecos.cli.demo import demo

    app.command("demo")(demo)
    app.command("serve")(__import__("openecos.cli.serve_cmd", fromlist=["serve"]).serve)
    __import__("openecos.cli.migrate_cmd", fromlist=["register"]).register(app)
    app.add_typer(__import__("openecos.cli.report_cmd", fromlist=["app"]).app, name="report")


_register()


def main() -> None:
    app(prog_name="openecos")
    sys.exit(0)
