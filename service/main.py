"""``fasterdb-sidecar``: read the environment, fail fast on bad settings, serve HTTP until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

from fasterdb.dsn import parse_dsn

from . import __version__
from .settings import ConfigError, Settings, load_settings, unknown_variables

PROG = "fasterdb-sidecar"


def _secrets(settings: Settings) -> tuple[str, ...]:
    """Every password (as written and as the driver decodes it) and the token, for the log mask."""
    found: list[str] = []
    for dsn in [settings.primary_dsn, *(r.dsn for r in settings.replica_dsns)]:
        found.extend(parse_dsn(dsn.get_secret_value()).secrets)
    if settings.admin_token is not None:
        found.append(settings.admin_token.get_secret_value())
    return tuple(found)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operations sidecar for PostgreSQL: health, replica lag, pool statistics, jobs. "
        "Configured through FASTERDB_* environment variables (see the README).",
    )
    parser.add_argument("--host", help="listen address (overrides FASTERDB_HOST)")
    parser.add_argument("--port", type=int, help="listen port (overrides FASTERDB_PORT)")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser.parse_args(argv)


def _log_drain(settings: Settings, sig: int) -> None:
    logging.getLogger("fasterdb.main").info(
        "%s: draining; readiness answers 503 from now on, requests are served for %g s more, "
        "then in-flight ones get %g s",
        signal.Signals(sig).name,
        settings.drain_min_seconds,
        settings.shutdown_timeout,
    )


def _dual_stack(host: str, port: int) -> list[socket.socket] | None:
    """Listening sockets for host "::" (IPv6 and IPv4; IPv4 alone without IPv6); None: uvicorn binds."""
    if host != "::":
        return None
    # asyncio would make "::" IPv6-only, and the application beside the sidecar calls 127.0.0.1.
    if socket.has_dualstack_ipv6():
        return [socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)]
    logging.getLogger("fasterdb.main").warning("no IPv6 on this host: listening on IPv4 only")
    return [socket.create_server(("0.0.0.0", port))]


def serve(settings: Settings) -> int:
    """Run the HTTP server until SIGTERM/SIGINT, then drain (see Settings) and exit 0."""
    import uvicorn

    from .app import Sidecar, create_app
    from .logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, _secrets(settings))
    log = logging.getLogger("fasterdb.main")
    for name in unknown_variables(os.environ):
        log.warning("ignoring unknown setting %s (typo?)", name)
    sidecar = Sidecar(settings)
    lifecycle = sidecar.lifecycle

    class Server(uvicorn.Server):
        """uvicorn with our drain: readiness 503 at SIGTERM, serve on for the minimum drain time."""

        exit_at: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            # Runs in a signal handler: set state only; logging happens on the event loop.
            if lifecycle.drain():
                self.exit_at = time.monotonic() + settings.drain_min_seconds
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().call_soon_threadsafe(_log_drain, settings, sig)
                return
            super().handle_exit(sig, frame)  # a second signal: stop accepting now (SIGINT twice: force)

        async def on_tick(self, counter: int) -> bool:
            if self.exit_at is not None and time.monotonic() >= self.exit_at:
                self.should_exit = True
            return bool(await super().on_tick(counter))

    config = uvicorn.Config(
        create_app(settings, sidecar),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        # In-flight requests get this long once the server stops accepting, fractions included
        # (uvicorn uses it as an asyncio timeout); then they are cancelled and answer a JSON 503.
        timeout_graceful_shutdown=settings.shutdown_timeout,  # type: ignore[arg-type]
    )
    server = Server(config)
    try:
        sockets = _dual_stack(settings.host, settings.port)
    except OSError as exc:  # as uvicorn reports its own bind errors
        log.error("cannot listen on [%s]:%d: %s", settings.host, settings.port, exc.strerror or exc)
        return 1
    if sockets is not None:
        log.info("listening on %s port %d", "::" if sockets[0].family == socket.AF_INET6 else "0.0.0.0", settings.port)
    # uvicorn handles SIGTERM/SIGINT (stop accepting, finish in-flight requests within the
    # timeout, run shutdown), then re-raises the signal to the handlers it found. Make those
    # no-ops so the process exits 0 after a graceful stop and --local-cluster can clean up.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=sockets)
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``fasterdb-sidecar``."""
    args = _parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(serve(settings))
