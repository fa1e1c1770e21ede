"""``openecos serve``: run the CoS service (HTTP API and workers) over a store.

Configuration comes from a sandbox directory (``--sandbox DIR``: its
``sandbox.json`` names the store, the PKI and the meters' key seed), from
explicit options, or both (options win). Keys are the PKI directory's
software keys unless ``--key`` names other sources or ``--pkcs11`` selects a
token (module, label and PIN from the options or ``OPENECOS_PKCS11_*``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from openecos.cli import CliError, err, one_line_errors
from openecos.cli.paths import default_xsd_dir
from openecos.cos.tad import TadConfig
from openecos.keys import Pkcs11Config
from openecos.service import DEFAULT_DEVICE_KEY_SEED, ServiceConfig, WorkerSettings
from openecos.service.identities import DccKeyNames
from openecos.service.migration_engine import EngineConfig
from openecos.service.runtime import default_worker_id, open_runtime

DEFAULT_STORE = "sqlite:///openecos.db"


def config_from_sandbox(directory: Path) -> tuple[str, Path, bytes, DccKeyNames]:
    from openecos.sandbox.manifest import read_manifest

    manifest = read_manifest(directory)
    dcc = manifest.dcc
    names = DccKeyNames(
        access_control_broker=dcc.access_control_broker,
        tcos_party=dcc.tcos_party,
        ecos_party=dcc.ecos_party,
        acb_ka=dcc.acb_ka,
        tcos_ds=dcc.tcos_ds,
        ecos_ds=dcc.ecos_ds,
        xml_signing=dcc.xml_signing,
    )
    return (
        manifest.store_url_in(directory),
        directory / manifest.pki,
        manifest.device_key_seed,
        names,
    )


@one_line_errors
def serve(
    sandbox: Annotated[
        Path | None, typer.Option("--sandbox", help="A directory made by `openecos sandbox init`.")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help=f"Store URL (default: the sandbox's, else {DEFAULT_STORE})."),
    ] = None,
    pki: Annotated[
        Path | None, typer.Option("--pki", help="Test-PKI directory (trust anchors, keys).")
    ] = None,
    xsd: Annotated[
        Path | None,
        typer.Option(
            "--xsd",
            help="DUIS V5.4 XSD directory (default: $OPENECOS_DUIS_XSD, else "
            "../shared/reference/duis/xsd).",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        list[Path] | None,
        typer.Option("--key", help="Key source (file or directory); repeatable. Default: --pki."),
    ] = None,
    pkcs11: Annotated[
        bool, typer.Option("--pkcs11", help="Use a PKCS#11 token for the DCC's keys.")
    ] = False,
    pkcs11_module: Annotated[str | None, typer.Option("--pkcs11-module")] = None,
    pkcs11_token: Annotated[str | None, typer.Option("--pkcs11-token")] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8080,
    workers: Annotated[
        bool, typer.Option("--workers/--no-workers", help="Run the CoS workers in this process.")
    ] = True,
    worker_id: Annotated[str | None, typer.Option("--worker-id")] = None,
    lease: Annotated[
        float, typer.Option("--lease", min=0.1, help="Work-item lease in seconds.")
    ] = 30.0,
    response_timeout: Annotated[
        float, typer.Option("--response-timeout", min=0.1, help="Resend after (seconds).")
    ] = 10.0,
    alert_deadline: Annotated[
        float,
        typer.Option(
            "--alert-deadline",
            min=1.0,
            help="Seconds after a future-dated execution time before a missing 0x00CB alert "
            "ends the request with E30.",
        ),
    ] = 3600.0,
    tad_user: Annotated[
        int | None,
        typer.Option(
            "--tad-user-threshold",
            min=0,
            help="Threshold Anomaly Detection: 6.23s per user per window before quarantine.",
        ),
    ] = None,
    tad_dcc: Annotated[
        int | None,
        typer.Option(
            "--tad-dcc-threshold", min=0, help="Threshold Anomaly Detection: 6.23s DCC-wide."
        ),
    ] = None,
    tad_window: Annotated[
        float, typer.Option("--tad-window-hours", min=0.25, help="TAD sliding window (hours).")
    ] = 24.0,
    migration: Annotated[
        bool,
        typer.Option(
            "--migration/--no-migration",
            help="Run the TCoS → ECoS migration engine in this process's workers "
            "(control it with `openecos migrate`).",
        ),
    ] = False,
) -> None:
    """Run the CoS service: POST /duis, GET /users/{id}/messages, /api, /openapi.json."""
    from openecos.api import serve as run_server

    store_url, pki_dir, seed, names = None, None, DEFAULT_DEVICE_KEY_SEED, DccKeyNames()
    if sandbox is not None:
        store_url, pki_dir, seed, names = config_from_sandbox(sandbox)
    store_url = store or store_url or DEFAULT_STORE
    pki_dir = pki or pki_dir
    if pki_dir is None:
        raise CliError("name a PKI directory with --pki or a sandbox with --sandbox")
    xsd_dir = xsd or default_xsd_dir()
    if xsd_dir is None:
        raise CliError("name the DUIS XSD directory with --xsd or OPENECOS_DUIS_XSD")
    defaults = WorkerSettings()
    config = ServiceConfig(
        store_url=store_url,
        pki_dir=pki_dir,
        xsd_dir=xsd_dir,
        key_sources=tuple(key or ()),
        pkcs11=Pkcs11Config.resolve(pkcs11_module, pkcs11_token) if pkcs11 else None,
        names=names,
        device_key_seed=seed,
        worker=WorkerSettings(
            lease=timedelta(seconds=lease),
            response_timeout=timedelta(seconds=response_timeout),
            # Fault injection for the crash tests (tests/service): never set in production.
            crash_at=os.environ.get("OPENECOS_CRASH_AT") or None,
            alert_deadline=timedelta(seconds=alert_deadline),
            tad=_tad_config(defaults.tad, tad_user, tad_dcc, tad_window),
        ),
        run_workers=workers,
        worker_id=worker_id or default_worker_id(),
        migration=EngineConfig(lease=timedelta(seconds=lease)) if migration else None,
    )
    runtime = open_runtime(config)
    err.print(f"openecos: serving on http://{host}:{port} (store {store_url.split('@')[-1]})")
    try:
        run_server(runtime, host=host, port=port)
    finally:
        runtime.close()


def _tad_config(
    default: TadConfig, user: int | None, dcc: int | None, window_hours: float
) -> TadConfig:
    """The defaults with what the operator set; the window is whole TAD buckets."""
    bucket_seconds = default.bucket.total_seconds()
    buckets = max(1, round(window_hours * 3600 / bucket_seconds))
    return replace(
        default,
        default_user_threshold=default.default_user_threshold if user is None else user,
        dcc_threshold=default.dcc_threshold if dcc is None else dcc,
        window=default.bucket * buckets,
    )
