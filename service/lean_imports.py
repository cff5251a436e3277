"""What the sidecar's process leaves out of its imports: modules it never uses (issue 24: memory).

``lean_imports()`` runs before the settings, the framework and the server are imported (``main``).
Each step keeps what the libraries do and only defers or drops an import the sidecar has no use for;
tests/unit/test_lean_imports.py checks the modules stay out and the libraries still answer the same.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any

from .versions import installed_version

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


def _process_pool_executor(*args: Any, **kwargs: Any) -> Any:
    """``concurrent.futures.ProcessPoolExecutor(...)``, its module imported when first called."""
    from concurrent.futures.process import ProcessPoolExecutor

    return ProcessPoolExecutor(*args, **kwargs)


def _import_framework() -> None:
    """FasterAPI, with its process pool's class imported only if the pool is ever made.

    ``FasterAPI.concurrency`` imports ``ProcessPoolExecutor`` at its top (multiprocessing, pickle:
    about 1.5 MB) for ``run_in_executor``, which the sidecar never calls. While it is imported,
    ``concurrent.futures.ProcessPoolExecutor`` is ``_process_pool_executor``; then the name is
    removed again, so everyone else gets the real class as before.
    """
    if "FasterAPI" in sys.modules:
        return
    version = types.ModuleType("FasterAPI._version", "FasterAPI's version, from fasterdb_sidecar.versions")
    version.get_version = _faster_version  # type: ignore[attr-defined]
    sys.modules["FasterAPI._version"] = version
    futures = importlib.import_module("concurrent.futures")
    shim = "concurrent.futures.process" not in sys.modules
    if shim:
        setattr(futures, "ProcessPoolExecutor", _process_pool_executor)  # noqa: B010 (mypy: not a class)
    try:
        importlib.import_module("FasterAPI")
    finally:
        if shim:
            delattr(futures, "ProcessPoolExecutor")


def lean_imports() -> None:
    """Keep modules the sidecar never uses out of the process (issue 24: resident memory).

    Called before the settings, the framework or the server are imported. ``importlib.metadata``
    (about 3 MB: email, zipfile, csv, importlib.resources) would be imported only to look up
    versions and pydantic plugins: FasterAPI's version comes from ``fasterdb_sidecar.versions``
    (the same answer); pydantic plugins are off unless ``PYDANTIC_DISABLE_PLUGINS`` is set (the
    sidecar's image installs none), and pydantic's loader imports the module only to look for them.
    FasterAPI's process pool is imported only if used. uvicorn's watchfiles and websockets are
    marked absent, and its command line is not imported.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _import_pydantic_plugin_loader()
    _import_framework()
    for name in UNUSED_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    _import_uvicorn_server()
