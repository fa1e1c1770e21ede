"""``openecos migrate`` and ``openecos regime``: operate the TCoS → ECoS migration.

Every command works against a store, named by ``--sandbox DIR`` (its
``sandbox.json``, as ``openecos serve`` reads it) or ``--store URL`` (with
``--pki DIR`` where keys are needed). Changes are made through
:class:`openecos.service.migration_desk.MigrationDesk` and
:class:`openecos.service.migration_regime.RegimeDesk`, so each is audit-logged
with ``--actor`` (default: the login name) and, for operator actions, a
``--note`` saying why.

- ``migrate start|pause|resume|drain|stop``: run control;
- ``migrate status``: counts, run state, a progress bar and the ETA at the
  rate of the trailing hour;
- ``migrate exceptions``; ``migrate retry|hold|release|field-visit|resolve EUI``;
- ``migrate settings`` (show), ``migrate capacity``, ``migrate approve-model``,
  ``migrate timings``;
- ``migrate run``: an engine worker process (delivering to the sandbox's
  simulated estate), until interrupted, or ``--once`` until idle;
- ``regime show|approve|change``.
"""

from __future__ import annotations

import getpass
import json
import signal
import threading
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from openecos.cli import CliError, one_line_errors
from openecos.eui import Eui64
from openecos.migration import (
    ApprovedModel,
    ApprovedModels,
    CapacityLimits,
    IneligibleReason,
    MeterMigration,
    OperatorAction,
    OrderField,
    RegimeEvent,
    RunEvent,
)
from openecos.network import MeterFaults
from openecos.service.clock import SystemClock
from openecos.service.identities import DccKeyNames
from openecos.service.migration_desk import MigrationDesk
from openecos.service.migration_regime import RegimeDesk
from openecos.service.migration_settings import MigrationSettings
from openecos.store import Store
from openecos.store.migration_regime import readiness_from_json

app = typer.Typer(help="Operate the TCoS → ECoS migration (run control, exceptions, status).")
regime_app = typer.Typer(help="The ETMAD regime: show it, approve a change, make it.")
out = Console(highlight=False)

SandboxOpt = Annotated[
    Path | None, typer.Option("--sandbox", help="A directory made by `openecos sandbox init`.")
]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL (else the sandbox's).")]
PkiOpt = Annotated[Path | None, typer.Option("--pki", help="Test-PKI directory (keys).")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who is acting (default: the login name).")
]


def register(root: typer.Typer) -> None:
    """Adds ``migrate`` and ``regime`` to the ``openecos`` command."""
    root.add_typer(app, name="migrate")
    root.add_typer(regime_app, name="regime")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the commands act: a store URL, and the PKI and meter seed when known."""

    store_url: str
    pki_dir: Path | None
    seed: bytes | None
    names: DccKeyNames

    @classmethod
    def resolve(cls, sandbox: Path | None, store: str | None, pki: Path | None) -> Target:
        from openecos.cli.serve_cmd import config_from_sandbox

        url, pki_dir, seed, names = None, None, None, DccKeyNames()
        if sandbox is not None:
            url, pki_dir, seed, names = config_from_sandbox(sandbox)
        url = store or url
        if url is None:
            raise CliError("name a store with --store or a sandbox with --sandbox")
        return cls(url, pki or pki_dir, seed, names)

    def open(self) -> Store:
        return Store.open(self.store_url)


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


def _desk(store: Store, target: Target, *, identities: bool = False) -> MigrationDesk:
    ids = None
    if identities:
        ids = _identities(store, target)
    return MigrationDesk(store, SystemClock(), ids)


def _identities(store: Store, target: Target):  # type: ignore[no-untyped-def]
    from openecos.keys import open_keystore
    from openecos.service.identities import ServiceTrust, resolve_service_keys
    from openecos.service.migration_identities import resolve_migration_identities

    if target.pki_dir is None:
        raise CliError("this needs the DCC's keys: name --pki or --sandbox")
    keys = resolve_service_keys(open_keystore([target.pki_dir]), target.names)
    trust = ServiceTrust.from_test_pki(target.pki_dir)
    return resolve_migration_identities(keys, trust, store, target.names)


# -- run control ------------------------------------------------------------------------------


def _control(event: RunEvent, sandbox: Path | None, store: str | None, actor: str | None) -> None:
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        run = _desk(opened, target).control(event, actor=_actor(actor))
    out.print(f"migration {run.state.value} ({event.value} by {run.changed_by})")


@app.command("start")
@one_line_errors
def start(sandbox: SandboxOpt = None, store: StoreOpt = None, actor: ActorOpt = None) -> None:
    """Start migrating (only in the migration regime do commands go out)."""
    _control(RunEvent.START, sandbox, store, actor)


@app.command("pause")
@one_line_errors
def pause(sandbox: SandboxOpt = None, store: StoreOpt = None, actor: ActorOpt = None) -> None:
    """Start nothing new; what is in flight is still answered and resolved."""
    _control(RunEvent.PAUSE, sandbox, store, actor)


@app.command("resume")
@one_line_errors
def resume(sandbox: SandboxOpt = None, store: StoreOpt = None, actor: ActorOpt = None) -> None:
    """Resume after a pause or a drain."""
    _control(RunEvent.RESUME, sandbox, store, actor)


@app.command("drain")
@one_line_errors
def drain(sandbox: SandboxOpt = None, store: StoreOpt = None, actor: ActorOpt = None) -> None:
    """Start nothing new and stop once nothing is in flight."""
    _control(RunEvent.DRAIN, sandbox, store, actor)


@app.command("stop")
@one_line_errors
def stop(sandbox: SandboxOpt = None, store: StoreOpt = None, actor: ActorOpt = None) -> None:
    """Stop: start nothing new (what is in flight still resolves)."""
    _control(RunEvent.STOP, sandbox, store, actor)


# -- status ----------------------------------------------------------------------------------


@app.command("status")
@one_line_errors
def status(
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Counts by status, run state, progress and the ETA at the trailing hour's rate."""
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        progress = _desk(opened, target).status()
        regime = RegimeDesk(opened, SystemClock()).current()
    eta = progress.eta
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "regime": regime.value,
                    "run": progress.run.state.value,
                    "counts": {s.name: n for s, n in sorted(progress.counts.items())},
                    "total": progress.total,
                    "migrated": progress.migrated,
                    "remaining": progress.remaining,
                    "rate_per_hour": progress.rate_per_hour,
                    "eta": None if eta is None else eta.isoformat(),
                }
            )
        )
        return
    table = Table(title=f"migration: {progress.run.state.value} (regime {regime.value})")
    table.add_column("status")
    table.add_column("meters", justify="right")
    for state, n in sorted(progress.counts.items(), key=lambda kv: kv[0].name):
        table.add_row(state.value, f"{n:,}")
    out.print(table)
    scope = progress.migrated + progress.remaining
    bar = Progress(
        TextColumn("migrated"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(f"{progress.migrated:,}/{scope:,}"),
        console=out,
        auto_refresh=False,
    )
    bar.add_task("migrated", total=max(scope, 1), completed=progress.migrated)
    bar.refresh()
    out.print(bar.get_renderable())
    rate = f"{progress.rate_per_hour:,.0f}/hour over the last hour"
    out.print(f"rate {rate}; ETA {'unknown' if eta is None else eta.isoformat(timespec='minutes')}")


# -- the exceptions queue --------------------------------------------------------------------


def _row(record: MeterMigration) -> list[str]:
    return [
        record.device.hex,
        record.status.value,
        record.reason.name,
        "" if record.error is None else record.error.name,
        record.credentials.name,
        str(record.total_attempts),
        "" if record.next_at is None else record.next_at.isoformat(timespec="seconds"),
        record.actor or "",
    ]


@app.command("exceptions")
@one_line_errors
def exceptions(
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    after: Annotated[str | None, typer.Option(help="Page after this EUI.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The meters waiting for an operator (exceptions, holds, field visits)."""
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        records = _desk(opened, target).exceptions(
            after=None if after is None else Eui64.parse(after), limit=limit
        )
    header = ["device", "status", "reason", "error", "cell", "attempts", "review at", "actor"]
    if as_json:
        out.print_json(json.dumps([dict(zip(header, _row(r), strict=True)) for r in records]))
        return
    table = Table(title=f"exceptions queue ({len(records)} shown)")
    for name in header:
        table.add_column(name)
    for record in records:
        table.add_row(*_row(record))
    out.print(table)


def _act(
    action: OperatorAction,
    device: str,
    note: str,
    sandbox: Path | None,
    store: str | None,
    actor: str | None,
    ineligible: IneligibleReason | None = None,
) -> None:
    target = Target.resolve(sandbox, store, None)
    needs_keys = action is OperatorAction.RESOLVE_MIGRATED
    with target.open() as opened:
        record = _desk(opened, target, identities=needs_keys).act(
            Eui64.parse(device), action, actor=_actor(actor), note=note, ineligible=ineligible
        )
    out.print(
        f"{record.device.hex}: {record.status.value} ({record.reason.name}); next "
        f"{record.next_action.value}"
    )


NoteOpt = Annotated[str, typer.Option("--note", help="Why (kept in the audit log).")]
DeviceArg = Annotated[str, typer.Argument(help="The meter's EUI-64.")]


@app.command("retry")
@one_line_errors
def retry(
    device: DeviceArg,
    note: NoteOpt,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Retry an exception now (a fresh retry budget; a read first if the cell is unknown)."""
    _act(OperatorAction.RETRY_NOW, device, note, sandbox, store, actor)


@app.command("hold")
@one_line_errors
def hold(
    device: DeviceArg,
    note: NoteOpt,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Hold a meter: the engine leaves it alone until released."""
    _act(OperatorAction.HOLD, device, note, sandbox, store, actor)


@app.command("release")
@one_line_errors
def release(
    device: DeviceArg,
    note: NoteOpt,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Release a held meter."""
    _act(OperatorAction.RELEASE_HOLD, device, note, sandbox, store, actor)


@app.command("field-visit")
@one_line_errors
def field_visit(
    device: DeviceArg,
    note: NoteOpt,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Mark an exception for a field visit."""
    _act(OperatorAction.FIELD_VISIT, device, note, sandbox, store, actor)


@app.command("resolve")
@one_line_errors
def resolve(
    device: DeviceArg,
    note: NoteOpt,
    outcome: Annotated[
        str, typer.Option("--as", help="migrated | not-migrated | ineligible:<REASON>")
    ],
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    pki: PkiOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Resolve a meter by hand after a field visit (migrated flips the inventory to ECoS)."""
    if outcome == "migrated":
        action, reason = OperatorAction.RESOLVE_MIGRATED, None
    elif outcome == "not-migrated":
        action, reason = OperatorAction.RESOLVE_NOT_MIGRATED, None
    elif outcome.startswith("ineligible:"):
        action = OperatorAction.RESOLVE_INELIGIBLE
        try:
            reason = IneligibleReason[outcome.split(":", 1)[1].upper()]
        except KeyError:
            raise CliError(f"unknown ineligible reason in {outcome!r}") from None
    else:
        raise CliError("--as is migrated, not-migrated or ineligible:<REASON>")
    target = Target.resolve(sandbox, store, pki)
    with target.open() as opened:
        record = _desk(opened, target, identities=action is OperatorAction.RESOLVE_MIGRATED).act(
            Eui64.parse(device), action, actor=_actor(actor), note=note, ineligible=reason
        )
    out.print(f"{record.device.hex}: {record.status.value} ({record.reason.name})")


# -- settings --------------------------------------------------------------------------------


@app.command("settings")
@one_line_errors
def settings(sandbox: SandboxOpt = None, store: StoreOpt = None) -> None:
    """Show the stored settings (capacity, order, approved list, timings) as JSON."""
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        out.print_json(_desk(opened, target).settings().to_json())


@app.command("capacity")
@one_line_errors
def capacity(
    per_day: Annotated[int, typer.Option("--per-day", min=0)],
    per_hour: Annotated[int, typer.Option("--per-hour", min=0)],
    in_flight: Annotated[int, typer.Option("--in-flight", min=0)],
    order: Annotated[
        str | None, typer.Option(help="Start order, e.g. retry,due_at,manufacturer,eui.")
    ] = None,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Set the capacity per day, per hour and in flight (and the start order)."""
    target = Target.resolve(sandbox, store, None)
    limits = CapacityLimits(per_day, per_hour, in_flight)
    fields = None if order is None else tuple(OrderField(f.strip()) for f in order.split(","))

    def change(s: MigrationSettings) -> MigrationSettings:
        return replace(s, capacity=limits, order=fields or s.order)

    with target.open() as opened:
        _desk(opened, target).update_settings(change, actor=_actor(actor), what="capacity")
    out.print(f"capacity {per_day}/day, {per_hour}/hour, {in_flight} in flight")


@app.command("approve-model")
@one_line_errors
def approve_model(
    manufacturer: Annotated[str, typer.Argument()],
    model: Annotated[str, typer.Argument()],
    firmware: Annotated[
        list[str] | None,
        typer.Option("--firmware", help="Approved firmware (repeatable; none: any)."),
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Take the model off the list.")] = False,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Put a manufacturer and model (and firmware versions) on the approved list."""
    target = Target.resolve(sandbox, store, None)
    entry = ApprovedModel(manufacturer, model, frozenset(firmware or ()))

    def change(s: MigrationSettings) -> MigrationSettings:
        others = tuple(
            m
            for m in s.approved.models
            if (m.manufacturer.casefold(), m.model.casefold())
            != (manufacturer.casefold(), model.casefold())
        )
        return replace(s, approved=ApprovedModels(others if remove else (*others, entry)))

    with target.open() as opened:
        after = _desk(opened, target).update_settings(
            change, actor=_actor(actor), what=f"{'remove' if remove else 'approve'} model"
        )
    out.print(f"{len(after.approved.models)} model(s) approved")


@app.command("timings")
@one_line_errors
def timings(
    response_timeout: Annotated[float | None, typer.Option(min=0.001)] = None,
    read_delay: Annotated[float | None, typer.Option(min=0.001)] = None,
    reassess_interval: Annotated[float | None, typer.Option(min=0.001)] = None,
    review_interval: Annotated[float | None, typer.Option(min=0.001)] = None,
    backoff_scale: Annotated[float | None, typer.Option(min=0.000001)] = None,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Set EMEHRA timings (seconds) and the scale of every retry backoff."""
    target = Target.resolve(sandbox, store, None)
    given = {
        "response_timeout": response_timeout,
        "read_delay": read_delay,
        "reassess_interval": reassess_interval,
        "review_interval": review_interval,
        "backoff_scale": backoff_scale,
    }

    def change(s: MigrationSettings) -> MigrationSettings:
        values = {k: v for k, v in given.items() if v is not None}
        return replace(s, policy=replace(s.policy, **values))  # type: ignore[arg-type]

    with target.open() as opened:
        _desk(opened, target).update_settings(change, actor=_actor(actor), what="timings")
    out.print("timings updated")


# -- the worker ------------------------------------------------------------------------------


@app.command("run")
@one_line_errors
def run(
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    pki: PkiOpt = None,
    worker_id: Annotated[str | None, typer.Option("--worker-id")] = None,
    batch: Annotated[
        int,
        typer.Option(min=1, max=10_000, help="Meters started per step (answers: at least 256)."),
    ] = 64,
    lease: Annotated[float, typer.Option(min=0.1, help="Row lease (seconds).")] = 30.0,
    poll: Annotated[float, typer.Option(min=0.001, help="Idle poll (seconds).")] = 0.2,
    once: Annotated[bool, typer.Option("--once", help="Stop when a step finds nothing.")] = False,
    fault_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.5, help="Injected meter faults (no response, busy, malformed, reboot)."
        ),
    ] = 0.0,
    fault_seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Run an engine worker: claims due meters, sends 0x0106 and reads, applies answers."""
    from openecos.device import DerivedDeviceKeys, MeterProfile
    from openecos.service import DEFAULT_DEVICE_KEY_SEED, SimulatedEstate
    from openecos.service.migration_delivery import EstateDelivery, FaultPlan
    from openecos.service.migration_engine import EngineConfig, MigrationEngine
    from openecos.service.runtime import default_worker_id

    target = Target.resolve(sandbox, store, pki)
    share = fault_rate / 4
    plan = FaultPlan(
        MeterFaults(no_response=share, busy=share, malformed_response=share, reboot=share),
        seed=fault_seed,
    )
    clock = SystemClock()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with target.open() as opened:
        identities = _identities(opened, target)
        trust_policies = frozenset(_trust(target).policies)
        profile = MeterProfile(
            keys=DerivedDeviceKeys(target.seed or DEFAULT_DEVICE_KEY_SEED), policies=trust_policies
        )
        estate = SimulatedEstate(opened, profile)
        engine = MigrationEngine(
            opened,
            identities,
            clock,
            EstateDelivery(estate, clock, plan),
            worker_id=worker_id or default_worker_id(),
            config=EngineConfig(
                batch=batch,
                # A step must be able to apply as many answers as it starts commands.
                answers_batch=max(batch, EngineConfig().answers_batch),
                lease=timedelta(seconds=lease),
                plan=plan,
            ),
        )
        try:
            while not stopping.is_set():
                done = engine.step()
                if not done:
                    if once:
                        break
                    stopping.wait(poll)
        except KeyboardInterrupt:
            pass


def _trust(target: Target):  # type: ignore[no-untyped-def]
    from openecos.service.identities import ServiceTrust

    assert target.pki_dir is not None
    return ServiceTrust.from_test_pki(target.pki_dir)


# -- regimes ---------------------------------------------------------------------------------


@regime_app.command("show")
@one_line_errors
def regime_show(
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The current regime, its history (approvals, readiness) and approvals waiting."""
    from openecos.store.migration_regime import approval_json, readiness_json

    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        view = RegimeDesk(opened, SystemClock()).view()
    history: list[dict[str, Any]] = [
        {
            "change_id": c.change_id,
            "from": c.change.previous.value,
            "event": c.change.event.value,
            "to": c.change.regime.value,
            "at": c.change.at.isoformat(),
            "requested_by": c.requested_by,
            "approvals": [approval_json(a) for a in c.change.approvals],
            "readiness": None if c.change.readiness is None else readiness_json(c.change.readiness),
        }
        for c in view.history
    ]
    pending = [approval_json(p.approval) for p in view.pending]
    document = {"regime": view.regime.value, "history": history, "pending_approvals": pending}
    if as_json:
        out.print_json(json.dumps(document))
        return
    out.print(f"regime: [bold]{view.regime.value}[/bold]")
    for change in history:
        approvers = ", ".join(a["approver"] for a in change["approvals"])
        out.print(
            f"  {change['at']}  {change['from']} --{change['event']}--> {change['to']}"
            f"  (asked by {change['requested_by']}; approved by {approvers})"
        )
    for approval in pending:
        out.print(f"  waiting: {approval['event']} approved by {approval['approver']}")


EventArg = Annotated[str, typer.Argument(help="go-live | back-out | retire-tcos")]


def _event(text: str) -> RegimeEvent:
    try:
        return RegimeEvent(text)
    except ValueError:
        raise CliError(
            f"unknown regime change {text!r}: go-live, back-out or retire-tcos"
        ) from None


@regime_app.command("approve")
@one_line_errors
def regime_approve(
    event: EventArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the change).")],
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Record your approval of a regime change."""
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        RegimeDesk(opened, SystemClock()).approve(
            _event(event), approver=_actor(actor), reason=reason
        )
    out.print(f"approval of {event} recorded")


@regime_app.command("change")
@one_line_errors
def regime_change(
    event: EventArg,
    readiness: Annotated[
        Path | None,
        typer.Option(
            "--readiness",
            help='JSON: {"assessed_at": ISO, "results": [{"criterion", "met", "evidence": []}]}',
        ),
    ] = None,
    sandbox: SandboxOpt = None,
    store: StoreOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Make a regime change with the approvals recorded for it (and readiness evidence)."""
    check = None
    if readiness is not None:
        try:
            check = readiness_from_json(json.loads(readiness.read_text()))
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"{readiness}: not a readiness document ({exc})") from None
    target = Target.resolve(sandbox, store, None)
    with target.open() as opened:
        change = RegimeDesk(opened, SystemClock()).change(
            _event(event), requested_by=_actor(actor), readiness=check
        )
    out.print(f"regime {change.previous.value} → {change.regime.value}")
