"""``openecos migrate`` and ``openecos regime`` against a sandbox directory (``--sandbox``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from openecos.cli import app as cli
from openecos.sandbox import create_sandbox
from openecos.store import Store, schema
from tests.service.env import free_port

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sandbox") / "sbx"
    create_sandbox(directory, meters=30, ecos_fraction=0.2, seed=3)
    return directory


def _models(sandbox: Path) -> list[tuple[str, str]]:
    with Store.open(f"sqlite:///{sandbox / 'store.db'}") as store, store.engine.connect() as conn:
        d = schema.devices
        return [tuple(r) for r in conn.execute(select(d.c.manufacturer, d.c.model).distinct())]


def test_an_operator_runs_a_migration_from_the_command_line(sandbox: Path) -> None:
    box = ["--sandbox", str(sandbox)]
    shown = json.loads(_run("regime", "show", *box, "--json"))
    assert shown["regime"] == "migration" and shown["history"] == []
    for manufacturer, model in _models(sandbox):
        _run("migrate", "approve-model", manufacturer, model, *box, "--actor", "alice")
    settings = json.loads(_run("migrate", "settings", *box))
    assert len(settings["approved"]) == len(_models(sandbox))
    _run("migrate", "capacity", "--per-day", "10", "--per-hour", "10", "--in-flight", "5", *box)
    assert "running" in _run("migrate", "start", *box, "--actor", "alice")
    paused = runner.invoke(cli, ["migrate", "resume", *box])
    assert paused.exit_code == 2 and "not allowed" in paused.output
    _run("migrate", "run", *box, "--once", "--worker-id", "cli-worker")
    status = json.loads(_run("migrate", "status", *box, "--json"))
    assert status["counts"]["MIGRATED"] == 10  # the day's capacity
    assert status["counts"]["INELIGIBLE"] == 6  # the sandbox's ECoS meters
    assert status["remaining"] == 14 and status["rate_per_hour"] == 10
    assert "migrated" in _run("migrate", "status", *box)  # the progress bar
    # An operator holds an eligible meter and releases it.
    with Store.open(f"sqlite:///{sandbox / 'store.db'}") as store, store.engine.connect() as conn:
        mm = schema.migration_meters
        device = conn.execute(select(mm.c.device).where(mm.c.status == "ELIGIBLE")).scalar()
    assert device is not None
    held = _run("migrate", "hold", device.hex, "--note", "supplier asked", *box, "--actor", "bob")
    assert "held" in held
    queue = json.loads(_run("migrate", "exceptions", *box, "--json"))
    assert [(q["device"], q["status"], q["actor"]) for q in queue] == [(device.hex, "held", "bob")]
    _run("migrate", "release", device.hex, "--note", "go ahead", *box)
    assert json.loads(_run("migrate", "exceptions", *box, "--json")) == []
    bad = runner.invoke(cli, ["migrate", "retry", device.hex, "--note", "x", *box])
    assert bad.exit_code == 2 and "not allowed" in bad.output
    _run("migrate", "drain", *box)
    assert json.loads(_run("migrate", "status", *box, "--json"))["run"] == "draining"
    _run("migrate", "run", *box, "--once")
    assert json.loads(_run("migrate", "status", *box, "--json"))["run"] == "stopped"


def test_regime_changes_from_the_command_line(sandbox: Path, tmp_path: Path) -> None:
    box = ["--sandbox", str(sandbox)]
    _run("regime", "approve", "back-out", "--reason", "defect", *box, "--actor", "alice")
    refused = runner.invoke(cli, ["regime", "change", "back-out", *box, "--actor", "alice"])
    assert refused.exit_code == 2 and "distinct approvers" in refused.output
    _run("regime", "approve", "back-out", "--reason", "agreed", *box, "--actor", "bob")
    assert "pre-go-live" in _run("regime", "change", "back-out", *box, "--actor", "alice")
    readiness = tmp_path / "readiness.json"
    readiness.write_text(json.dumps({"assessed_at": "2020-01-01T00:00:00+00:00", "results": []}))
    for who in ("alice", "carol"):
        _run("regime", "approve", "go-live", "--reason", "ready", *box, "--actor", who)
    refused = runner.invoke(
        cli, ["regime", "change", "go-live", "--readiness", str(readiness), *box]
    )
    assert refused.exit_code == 2 and "testing-complete" in refused.output
    shown = json.loads(_run("regime", "show", *box, "--json"))
    assert shown["regime"] == "pre-go-live"
    assert [p["approver"] for p in shown["pending_approvals"]] == ["alice", "carol"]
    assert shown["history"][0]["requested_by"] == "alice"


def test_openecos_serve_runs_the_engine_that_openecos_migrate_controls(tmp_path: Path) -> None:
    directory = tmp_path / "served"
    create_sandbox(directory, meters=12, ecos_fraction=0.25, seed=5)
    box = ["--sandbox", str(directory)]
    for manufacturer, model in _models(directory):
        _run("migrate", "approve-model", manufacturer, model, *box)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("openecos")),
        "serve", *box, "--migration", "--port", str(port), "--lease", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        _run("migrate", "start", *box)
        deadline = time.monotonic() + 90
        status = json.loads(_run("migrate", "status", *box, "--json"))
        while status["total"] < 12 or status["remaining"]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
            status = json.loads(_run("migrate", "status", *box, "--json"))
        assert status["counts"] == {"INELIGIBLE": 3, "MIGRATED": 9}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/api/migration").json()["migrated"] == 9
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
