"""``fasterdb-admin health`` against a running sidecar: exit codes 0/2/3, JSON and table output."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from devtools.cluster import free_port
from devtools.hot_standby import HotStandbyCluster
from tests.harness import SidecarProcess, admin_process, run_cli, wait_for


def test_ok_json_and_table(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    result = run_cli("health", "--url", sidecar.url, "--output", "json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)  # stdout is JSON alone
    assert body["status"] == "ok" and body["primary"]["ok"] is True
    assert body["replicas"][0]["name"] == "replica-1"
    assert result.stderr == ""

    result = run_cli("health", env={"FASTERDB_URL": sidecar.url})
    assert result.returncode == 0
    assert "primary" in result.stdout and "replica-1" in result.stdout and "database: ok" in result.stdout


def test_database_down_exits_critical(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    pg.stop_node(pg.primary)
    result = wait_for(lambda: (r := run_cli("health", "--url", sidecar.url, "-o", "json")).returncode == 2 and r)
    assert result.returncode == 2
    assert json.loads(result.stdout)["status"] == "unavailable"
    assert pg.app_password not in result.stdout + result.stderr


def test_unreachable_sidecar_is_unknown() -> None:
    result = run_cli("health", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("fasterdb-admin: cannot reach the sidecar")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.fixture()
def not_a_sidecar() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_garbage_answer_is_unknown(not_a_sidecar: str) -> None:
    result = run_cli("health", "--url", not_a_sidecar)
    assert result.returncode == 3
    assert "non-JSON" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["health", "--bogus"],
        ["health", "--output", "yaml"],
        ["health", "--timeout", "abc"],
        ["no-such-command"],
        ["health", "--url", "ftp://x"],
        [],
    ],
)
def test_usage_errors_exit_unknown_never_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 3, (args, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_installed_entry_point_runs_as_a_process(sidecar: SidecarProcess) -> None:
    """The one CLI test through a real process: the console entry point and its exit status."""
    result = admin_process("health", "--url", sidecar.url, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.startswith("{")
