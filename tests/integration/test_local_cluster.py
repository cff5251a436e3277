"""``make run``: the sidecar on a throwaway local primary + replica, with nothing secret in sight."""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.harness import SidecarProcess, wait_for


def test_make_run_serves_prints_how_to_connect_and_cleans_up() -> None:
    sidecar = SidecarProcess({}, module="devtools.local")
    try:
        sidecar.start(wait=90)
        wait_for(lambda: sidecar.get("/health/db?replicas=true").status_code == 200, 30, what="ready")
        logs = sidecar.logs()
        found = re.search(r'connect to the primary: psql "\$\(cat (\S+)\)"', logs)
        assert found and Path(found.group(1)).stat().st_mode & 0o777 == 0o600
        assert Path(found.group(1)).read_text().startswith("postgresql://")
        assert "admin token: export FASTERDB_ADMIN_TOKEN=$(cat " in logs
        urls = re.search(r"status page (http://\S+/) · API docs \(Swagger UI\) (http://\S+/docs)\n", logs)
        assert urls and urls.group(1) == sidecar.url + "/", logs
        for url in urls.groups():  # both answer as printed
            assert httpx.get(url, timeout=10).headers["content-type"] == "text/html; charset=utf-8"
        assert "postgresql://" not in logs  # no DSN in what it printed
        assert sidecar.proc is not None
        base = Path(found.group(1)).parent
        sidecar.proc.send_signal(signal.SIGTERM)
        assert sidecar.proc.wait(30) == 0
        assert not base.exists() and "local cluster removed" in sidecar.logs()
    finally:
        sidecar.stop()


def test_a_busy_port_is_found_before_the_cluster_is_built() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sidecar = SidecarProcess({"FASTERDB_PORT": str(port)}, module="devtools.local")
        sidecar.env["FASTERDB_PORT"] = str(port)
        assert sidecar.proc is None
        import subprocess
        import sys

        from tests.harness import ROOT

        result = subprocess.run(
            [sys.executable, "-m", "devtools.local"],
            env=sidecar.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "make run PORT=" in result.stderr
    assert "starting a local PostgreSQL" not in result.stderr  # nothing was built first


def test_the_local_cluster_puts_no_dsn_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools.local import local_cluster

    for name in [k for k in os.environ if k.startswith("FASTERDB_")]:
        monkeypatch.delenv(name)
    with local_cluster("test"):
        values = {k: v for k, v in os.environ.items() if k.startswith("FASTERDB_")}
        assert sorted(values) == [
            "FASTERDB_ADMIN_TOKEN_FILE",
            "FASTERDB_PRIMARY_DSN_FILE",
            "FASTERDB_REPLICA_DSNS_FILE",
        ]
        assert not [v for v in os.environ.values() if "postgresql://" in v]
        assert Path(values["FASTERDB_PRIMARY_DSN_FILE"]).read_text().startswith("postgresql://")
        for name in ("FASTERDB_PRIMARY_DSN_FILE", "FASTERDB_REPLICA_DSNS_FILE"):
            monkeypatch.delenv(name)  # what local_cluster set; the monkeypatch restores the rest
        monkeypatch.delenv("FASTERDB_ADMIN_TOKEN_FILE")
