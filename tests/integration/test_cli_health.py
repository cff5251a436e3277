"""``fasterdb-admin health`` against a running sidecar: exit codes 0/2/3, JSON and table output."""

from __future__ import annotations

import http.server
import json
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from devtools.cluster import free_port
from devtools.hot_standby import HotStandbyCluster
from tests.harness import ROOT, SidecarProcess, admin_process, clean_environ, run_cli, wait_for


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


def test_https_to_the_plain_http_sidecar_is_one_clear_line(sidecar: SidecarProcess) -> None:
    url = sidecar.url.replace("http://", "https://")
    result = run_cli("health", "--url", url)
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr == (
        f"fasterdb-admin: cannot reach the sidecar at {url}: TLS handshake failed: does it speak plain HTTP? "
        "(try http://)\n"
    )


def test_one_time_format_and_human_sizes_in_every_table(sidecar: SidecarProcess) -> None:
    for command in (["health"], ["pool-stats"], ["check-replicas"], ["activity"], ["slots"], ["wraparound"]):
        result = run_cli(*command, "--url", sidecar.url)
        assert result.returncode in (0, 1), (command, result.stderr)
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", result.stdout), (command, result.stdout)
        stamps = re.findall(r"at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \([^)]*\))", result.stdout)
        assert stamps or command in (["check-replicas"], ["slots"], ["wraparound"]), (command, result.stdout)
    replicas = run_cli("check-replicas", "--url", sidecar.url).stdout
    assert "critical above 16.0 MB or above 10.0s" in replicas and "16777216" not in replicas


def read_terminal(master: int) -> str:
    """Everything written to a pseudo-terminal until its last writer closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_nagios_failure_is_shown_once_in_a_terminal() -> None:
    """A real terminal is the point: stdout and stderr on one pty, as a person running the check sees them."""
    url = f"http://127.0.0.1:{free_port()}"
    args = [
        sys.executable,
        "-c",
        "from fasterdb_admin.main import main; main()",
        "health",
        "--url",
        url,
        "-o",
        "nagios",
    ]
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT, env=clean_environ()
        )
        os.close(slave)
        shown = read_terminal(master)
        assert proc.wait(30) == 3
    finally:
        os.close(master)
    assert shown.count("cannot reach the sidecar") == 1, shown
    assert shown.startswith("DATABASE UNKNOWN - cannot reach the sidecar")
    # Not a terminal: the plugin line on stdout and the diagnostic on stderr, each once.
    piped = admin_process("health", "--url", url, "-o", "nagios")
    assert piped.returncode == 3 and piped.stdout.startswith("DATABASE UNKNOWN - ")
    assert piped.stderr.startswith("fasterdb-admin: cannot reach the sidecar")
