"""``openecos demo``: the main job on the embedded default (SQLite, software keys).

A sandbox (test PKI, two suppliers, the TCoS and ECoS Parties, a meter estate
partly on ECoS credentials), the CoS service on a loopback port, and a burst of
change-of-supplier requests sent to it over HTTP as a supplier's system would
send them: mostly valid, and some that must be refused, one per way a request
goes wrong (see :mod:`openecos.sandbox.burst`). It waits for every request to
end, then shows what the service answered by kind and DUIS response code, and
exits non-zero if any answer was not the one the request deserved.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn
from lxml import etree  # type: ignore[import-untyped]
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from openecos.cli import CliError, one_line_errors
from openecos.cli.paths import default_xsd_dir
from openecos.cli.serve_cmd import config_from_sandbox
from openecos.sandbox import create_sandbox
from openecos.sandbox.burst import BurstKind, BurstRequest, plan_burst

out = Console(highlight=False)
_SR = "{http://www.dccinterface.co.uk/ServiceUserGateway}"
FINAL = {"Completed", "Failed", "Rejected", "Cancelled"}


@one_line_errors
def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to write the sandbox (default: a new temporary one)."),
    ] = None,
    meters: Annotated[int, typer.Option(min=20, max=100_000, help="Meters in the sandbox.")] = 600,
    switches: Annotated[int, typer.Option(min=1, help="Valid switches in the burst.")] = 300,
    invalid: Annotated[int, typer.Option(min=0, help="Requests of each bad kind.")] = 10,
    xsd: Annotated[
        Path | None, typer.Option("--xsd", help="DUIS V5.4 XSD directory.", show_default=False)
    ] = None,
) -> None:
    """Run the demonstration: a sandbox, the service, and a burst of switches over HTTP."""
    xsd_dir = xsd or default_xsd_dir()
    if xsd_dir is None:
        raise CliError(
            "the DUIS V5.4 schemas were not found: put the shared reference data beside the "
            "clone (../shared/reference/duis/xsd), or give --xsd or OPENECOS_DUIS_XSD"
        )
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="openecos-demo-"))
    elif directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} is not empty; choose a new directory")

    out.rule("[bold]1. A sandbox")
    started = time.monotonic()
    with out.status(f"creating {meters} meters, their certificates and the registration data"):
        sandbox = create_sandbox(directory, meters=meters, ecos_fraction=0.25, seed=1)
    out.print(f"{directory}: {meters} meters ({time.monotonic() - started:.1f} s)")

    out.rule("[bold]2. The CoS service on a loopback port")
    from openecos.service import ServiceConfig, open_runtime

    store_url, pki_dir, seed, names = config_from_sandbox(directory)
    config = ServiceConfig(
        store_url=store_url, pki_dir=pki_dir, xsd_dir=xsd_dir, names=names, device_key_seed=seed
    )
    runtime = open_runtime(config)
    with _serving(runtime) as client:
        base = str(client.base_url).rstrip("/")
        out.print(f"serving on {base}  (interface specification: {base}/openapi.json)")

        out.rule("[bold]3. A burst of 6.23 requests")
        now = datetime.now(UTC)
        burst = plan_burst(
            sandbox,
            valid=switches,
            each_invalid=invalid,
            now=now,
            first_counter=int(now.timestamp()),
        )
        acks, finals = _send_and_wait(client, burst)

        out.rule("[bold]4. What the service answered")
        dcc = sandbox.manifest.dcc
        party_names = {dcc.tcos_party.hex: "the TCoS Party", dcc.ecos_party.hex: "the ECoS Party"}
        ok = _summary(burst, acks, finals, party_names)
        _show_a_switched_meter(client, burst, finals)
    if not ok:
        raise CliError("some requests did not get the answer they deserved (see the table)")
    out.print("[green]ok[/green]: every valid switch completed; every bad request was refused")


@contextmanager
def _serving(runtime: object) -> Iterator[httpx.Client]:
    from openecos.api import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), log_level="warning", access_log=False)  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait(lambda: _healthy(client), 30, "the service did not start")
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def _wait(condition: object, seconds: float, message: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise CliError(message)
        time.sleep(0.05)


def _ack_code(body: bytes) -> str:
    root = etree.fromstring(body)
    code = root.find(f"{_SR}Header/{_SR}ResponseCode")
    return "?" if code is None else str(code.text)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
    )


def _send_and_wait(
    client: httpx.Client, burst: list[BurstRequest]
) -> tuple[dict[int, str], dict[str, tuple[str, str]]]:
    """Acknowledgement code per burst index; (response code, CoS Party) per acknowledged request."""
    acks: dict[int, str] = {}
    with _progress() as progress:
        sending = progress.add_task("sending (acknowledged on receipt)", total=len(burst))
        for index, request in enumerate(burst):
            answer = client.post("/duis", content=request.document)
            acks[index] = _ack_code(answer.content) if answer.status_code == 200 else "HTTP"
            progress.advance(sending)
        accepted = {burst[i].request_id for i, code in acks.items() if code == "I99"}
        finals: dict[str, tuple[str, str]] = {}
        ending = progress.add_task("switching (until every request ends)", total=len(accepted))
        deadline = time.monotonic() + 60 + len(accepted) * 0.5
        while len(finals) < len(accepted) and time.monotonic() < deadline:
            for request_id in sorted(accepted - finals.keys()):
                view = client.get(f"/api/requests/{request_id}").json()
                if view["status"] in FINAL:
                    finals[request_id] = (view["response_code"] or "", view["cos_party"] or "")
                    progress.advance(ending)
            time.sleep(0.1)
    return acks, finals


def as_it_should_be(kind: BurstKind, ack: str, code: str) -> bool:
    """Whether the service's answer is the one a request of this kind deserves."""
    if kind is BurstKind.VALID:
        return ack == "I99" and code == "I0"
    if kind in (BurstKind.TAMPERED, BurstKind.REPLAYED):
        return ack.startswith("E")  # refused at intake: nothing recorded
    # Refused by the CoS checks (acknowledged, then an error response), or at intake.
    return ack.startswith("E") or (ack == "I99" and code.startswith("E"))


def _summary(
    burst: list[BurstRequest],
    acks: dict[int, str],
    finals: dict[str, tuple[str, str]],
    party_names: dict[str, str],
) -> bool:
    rows: Counter[tuple[BurstKind, str, str]] = Counter()
    for index, request in enumerate(burst):
        ack = acks[index]
        code = finals.get(request.request_id, ("", ""))[0] if ack == "I99" else ""
        rows[(request.kind, ack, code or "-")] += 1
    table = Table(title="outcomes by kind of request and DUIS response code")
    for column in ("kind of request", "sent", "acknowledgement", "response", "as it should be"):
        table.add_column(column)
    all_good = True
    order = list(BurstKind)
    for (kind, ack, code), count in sorted(
        rows.items(), key=lambda r: (order.index(r[0][0]), r[0])
    ):
        good = as_it_should_be(kind, ack, code)
        all_good &= good
        table.add_row(kind.value, str(count), ack, code, "yes" if good else "[red]NO[/red]")
    out.print(table)
    parties = Counter(
        finals[r.request_id][1]
        for i, r in enumerate(burst)
        if r.kind is BurstKind.VALID and acks[i] == "I99" and r.request_id in finals
    )
    signed_by = ", ".join(
        f"{count} by {party_names.get(party, party)}" for party, count in sorted(parties.items())
    )
    out.print(f"valid switches routed by the meter's credential state, signed {signed_by}")
    return all_good


def _show_a_switched_meter(
    client: httpx.Client, burst: list[BurstRequest], finals: dict[str, tuple[str, str]]
) -> None:
    switched = next(
        (
            r
            for r in burst
            if r.kind is BurstKind.VALID and finals.get(r.request_id, ("", ""))[1] == "I0"
        ),
        None,
    )
    if switched is None:
        return
    device = client.get(f"/api/devices/{switched.device.hex}").json()
    cells = [c for c in device["cells"] if c["role"] in ("SUPPLIER", "TRANSITIONAL_COS")]
    table = Table(
        title=f"meter {switched.device.duis} after the switch ({device['credential_state']})"
    )
    for column in ("cell", "holds the certificate of"):
        table.add_column(column)
    for cell in cells:
        table.add_row(
            f"{cell['role']} {cell['key_usage']} {cell['cell_usage']}", cell["subject_eui"]
        )
    out.print(table)
    out.print(f"the gaining supplier is {switched.gaining_user.duis}")
