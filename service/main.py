"""``fasterdb-sidecar``: read the environment, fail fast on bad settings, serve HTTP until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from service import __version__
from service.dsn import parse_dsn
from service.settings import ConfigError, Settings, load_settings, unknown_variables

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
    parser.add_argument(
        "--local-cluster",
        action="store_true",
        help="start a throwaway local PostgreSQL primary + streaming replica and serve against it "
        "(FASTERDB_PRIMARY_DSN/REPLICA_DSNS are then set for you); removed again on exit",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _local_cluster() -> Iterator[None]:
    """The throwaway cluster of ``devtools`` (a source checkout only; never in the image)."""
    try:
        from devtools.local import LocalClusterError, local_cluster
    except ImportError:
        print(
            f"{PROG}: --local-cluster needs a source checkout of fasterdb-ops (devtools is not installed)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    try:
        with local_cluster(PROG):
            yield
    except LocalClusterError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _log_drain(settings: Settings, sig: int) -> None:
    logging.getLogger("fasterdb.main").info(
        "%s: draining; readiness answers 503 from now on, requests are served for %g s more, "
        "then in-flight ones get %g s",
        signal.Signals(sig).name,
        settings.drain_min_seconds,
        settings.shutdown_timeout,
    )


def serve(settings: Settings) -> int:
    """Run the HTTP server until SIGTERM/SIGINT, then drain (see Settings) and exit 0."""
    import uvicorn

    from service.app import Sidecar, create_app
    from service.logs import configure_logging

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
    # uvicorn handles SIGTERM/SIGINT (stop accepting, finish in-flight requests within the
    # timeout, run shutdown), then re-raises the signal to the handlers it found. Make those
    # no-ops so the process exits 0 after a graceful stop and --local-cluster can clean up.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run()
    return 0 if server.started else 1


def _port_free(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (None: it can); checked before anything is started."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``fasterdb-sidecar``."""
    args = _parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.local_cluster:
        # Before the cluster is built (seconds): a busy port is found at once.
        host = args.host or os.environ.get("FASTERDB_HOST", "0.0.0.0")
        raw_port = os.environ.get("FASTERDB_PORT", "8080")
        port = args.port if args.port is not None else int(raw_port) if raw_port.isdigit() else None
        busy = _port_free(host, port) if port is not None and port < 65536 else None  # else: settings say why
        if busy is not None:
            print(
                f"{PROG}: cannot listen on {host}:{port}: {busy} (choose another with --port, or make run PORT=...)",
                file=sys.stderr,
            )
            raise SystemExit(1)
    with _local_cluster() if args.local_cluster else contextlib.nullcontext():
        try:
            settings = load_settings(**overrides)
        except ConfigError as exc:
            print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        code = serve(settings)
    raise SystemExit(code)
