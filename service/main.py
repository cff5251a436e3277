"""``fasterdb-sidecar``: read the environment, fail fast on bad settings, serve HTTP until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from . import __version__
from .lean_imports import lean_imports

if TYPE_CHECKING:
    from .settings import Settings

PROG = "fasterdb-sidecar"


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


def serve(settings: Settings) -> int:
    """Run the sidecar until SIGTERM/SIGINT, then drain (``drain``) and return the exit code."""
    lean_imports()
    from .app import Sidecar, create_app
    from .drain import serve as run
    from .logs import configure_logging
    from .settings import secrets_of, unknown_variables

    configure_logging(settings.log_level, settings.log_format, secrets_of(settings))
    log = logging.getLogger("fasterdb.main")
    for name in unknown_variables(os.environ):
        log.warning("ignoring unknown setting %s (typo?)", name)
    sidecar = Sidecar(settings)
    app = create_app(settings, sidecar)
    return run(
        app,
        sidecar.lifecycle,
        settings.host,
        settings.port,
        settings.drain_min_seconds,
        settings.shutdown_timeout,
        settings.max_request_head_bytes,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``fasterdb-sidecar``."""
    args = _parse_args(argv)
    lean_imports()
    from .settings import ConfigError, load_settings

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(serve(settings))
