"""The sidecar's process leaves unused modules out (issue 24: memory), and the libraries still answer alike.

A fresh interpreter does what ``fasterdb-sidecar`` does before serving (``lean_imports``, then the
settings, the app and its routes, uvicorn's server) and reports what it imported; the versions,
uvicorn's attributes and FasterAPI's process pool are compared with what the libraries give without
the lean imports.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from fasterdb_sidecar.versions import installed_version
from tests.harness import ROOT

# Modules the running sidecar has no use for: each costs 0.5-3 MB of resident memory.
UNUSED = (
    "importlib.metadata",  # versions and pydantic plugins (email, zipfile, csv)
    "prometheus_client",  # /metrics is written by fasterdb_sidecar.metrics.exposition
    "click",  # uvicorn's command line
    "uvicorn.main",
    "multiprocessing",  # FasterAPI's process pool, never made
    "concurrent.futures.process",
    "email.message",
    "watchfiles",
    "websockets",
)

PROBE = """
import json, os, sys
from fasterdb_sidecar.lean_imports import lean_imports
lean_imports()
import fasterdb_sidecar.app, fasterdb_sidecar.drain, fasterdb_sidecar.settings, fasterdb_sidecar.routes.metrics
import FasterAPI, uvicorn, uvicorn.config, uvicorn.server
from pydantic.plugin._loader import get_plugins
loaded = sorted(m for m in json.loads(sys.argv[1]) if sys.modules.get(m) is not None)
report = {
    "loaded": loaded,
    "faster": FasterAPI.__version__,
    "uvicorn": uvicorn.__version__,
    "uvicorn_classes": uvicorn.Config is uvicorn.config.Config and uvicorn.Server is uvicorn.server.Server,
    "plugins": list(get_plugins()),
    "plugins_env": os.environ["PYDANTIC_DISABLE_PLUGINS"],
}
from uvicorn.lifespan.on import LifespanOn  # imports "from uvicorn import Config"
report["uvicorn_run"] = uvicorn.run.__module__ + "." + uvicorn.run.__name__
report["uvicorn_main"] = type(uvicorn.main).__name__
import concurrent.futures
import FasterAPI.concurrency
report["pool_class"] = concurrent.futures.ProcessPoolExecutor.__module__
with FasterAPI.concurrency.ProcessPoolExecutor(max_workers=1) as pool:
    report["pool_answer"] = pool.submit(abs, -3).result(timeout=60)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def report() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(UNUSED)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_the_unused_modules_stay_out(report: dict[str, object]) -> None:
    assert report["loaded"] == []


def test_the_libraries_report_their_own_versions(report: dict[str, object]) -> None:
    assert report["faster"] == importlib.metadata.version("faster-api-web")
    assert report["uvicorn"] == importlib.metadata.version("uvicorn")


def test_uvicorn_keeps_its_attributes_and_loads_its_command_line_on_first_use(report: dict[str, object]) -> None:
    assert report["uvicorn_classes"] is True
    assert report["uvicorn_run"] == "uvicorn.main.run"
    assert report["uvicorn_main"] == "Command"  # click's command, as `import uvicorn` gives it


def test_pydantic_plugins_are_off_by_default(report: dict[str, object]) -> None:
    assert report["plugins"] == [] and report["plugins_env"] == "__all__"


def test_the_frameworks_process_pool_still_works(report: dict[str, object]) -> None:
    assert report["pool_class"] == "concurrent.futures.process"  # the real class for everyone else
    assert report["pool_answer"] == 3


@pytest.mark.parametrize(
    "distribution", ["fasterdb-ops", "faster-api-web", "pydantic_core", "prometheus-client", "PyYAML", "uvicorn"]
)
def test_installed_version_matches_importlib_metadata(distribution: str) -> None:
    assert installed_version(distribution) == importlib.metadata.version(distribution)


def test_a_distribution_that_is_not_installed_has_no_version() -> None:
    assert installed_version("no-such-distribution-x") is None
