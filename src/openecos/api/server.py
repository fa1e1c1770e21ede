"""Running the application: uvicorn on a host and port, or on a socket already bound."""

from __future__ import annotations

import socket

import uvicorn

from openecos.api.app import create_app
from openecos.service import ServiceRuntime


def serve(
    runtime: ServiceRuntime,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    sock: socket.socket | None = None,
    log_level: str = "warning",
) -> None:
    """Serves until interrupted; the runtime's workers run for as long as the server does."""
    config = uvicorn.Config(
        create_app(runtime), host=host, port=port, log_level=log_level, access_log=False
    )
    server = uvicorn.Server(config)
    server.run(sockets=None if sock is None else [sock])
