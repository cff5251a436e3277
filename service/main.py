"""``fasterdb-sidecar``: read the environment, fail fast on bad settings, serve HTTP until SIGTERM."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
import types
from typing import TYPE_CHECKING, Any

from . import __version__
from .versions import installed_version

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


# Installed with uvicorn[standard] (the framework requires it) but never used here: uvicorn imports
# watchfiles (for --reload) and websockets (for ws="auto") whenever they are installed, ~1.3 MB of
# resident memory for nothing (issue 24). Marked absent, uvicorn uses its fallbacks (no reload
# watcher, no WebSocket protocol: the sidecar serves no WebSocket).
UNUSED_OPTIONAL_MODULES = ("watchfiles", "websockets")


def _faster_version() -> str:
    """What ``FasterAPI._version.get_version`` answers, without importing ``importlib.metadata``."""
    return installed_version("faster-api-web") or "0.0.0"


def _entry_points(**params: Any) -> Any:
    """``importlib.metadata.entry_points``, imported when first called."""
    from importlib.metadata import entry_points

    return entry_points(**params)


def _import_pydantic_plugin_loader() -> None:
    """Import pydantic's plugin loader with its ``entry_points`` bound to ``_entry_points``.

    pydantic imports the loader when it builds the first model, and the loader imports
    ``importlib.metadata`` at its top, although it looks for entry points only when plugins are on.
    """
    if "pydantic.plugin._loader" in sys.modules or "importlib.metadata" in sys.modules:
        return
    shim = types.ModuleType("importlib.metadata", "only entry_points, imported on first call")
    shim.entry_points = _entry_points  # type: ignore[attr-defined]
    sys.modules["importlib.metadata"] = shim
    try:
        importlib.import_module("pydantic.plugin._loader")
    finally:
        del sys.modules["importlib.metadata"]


def _uvicorn_cli(name: str) -> Any:
    """``uvicorn.main`` and ``uvicorn.run`` (the command line), imported on first access."""
    if name not in ("main", "run"):
        raise AttributeError(f"module 'uvicorn' has no attribute {name!r}")
    cli = importlib.import_module("uvicorn.main")
    package = sys.modules["uvicorn"]
    package.main, package.run = cli.main, cli.run  # type: ignore[attr-defined]
    return getattr(cli, name)


def _import_uvicorn_server() -> None:
    """uvicorn's package without its command line, which its ``__init__`` imports.

    ``uvicorn.main`` brings click and the reload and worker supervisors (multiprocessing): about
    1 MB the sidecar never uses (it runs ``uvicorn.Server``; see ``drain``). The package gets the
    attributes its ``__init__`` gives it; ``uvicorn.main`` and ``uvicorn.run`` load on first access.
    """
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    if spec is None:
        return
    package = importlib.util.module_from_spec(spec)
    package.__getattr__ = _uvicorn_cli  # type: ignore[method-assign]
    sys.modules["uvicorn"] = package
    from uvicorn.config import Config
    from uvicorn.server import Server

    package.Config, package.Server = Config, Server  # type: ignore[attr-defined]
    package.__version__ = installed_version("uvicorn") or "0.0.0"  # type: ignore[attr-defined]
    package.__all__ = ["main", "run", "Config", "Server"]  # type: ignore[attr-defined]


def lean_imports() -> None:
    """Keep modules the sidecar never uses out of the process (issue 24: resident memory).

    Called before the settings, the framework or the server are imported. ``importlib.metadata``
    (about 3 MB: email, zipfile, csv, importlib.resources) would be imported only to look up
    versions and pydantic plugins: FasterAPI's version comes from ``fasterdb_sidecar.versions``
    (the same answer); pydantic plugins are off unless ``PYDANTIC_DISABLE_PLUGINS`` is set (the
    sidecar's image installs none), and pydantic's loader imports the module only to look for them.
    uvicorn's watchfiles and websockets are marked absent, and its command line is not imported.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _import_pydantic_plugin_loader()
    if "FasterAPI" not in sys.modules:
        version = types.ModuleType("FasterAPI._version", "FasterAPI's version, from fasterdb_sidecar.versions")
        version.get_version = _faster_version  # type: ignore[attr-defined]
        sys.modules["FasterAPI._version"] = version
    for name in UNUSED_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    _import_uvicorn_server()


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
        app, sidecar.lifecycle, settings.host, settings.port, settings.drain_min_seconds, settings.shutdown_timeout
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
