"""``health`` and ``check-replicas`` as Nagios (and Icinga, NRPE) run them: the plugin guidelines.

Exactly one line on stdout for every outcome, UNKNOWN included ("(No output)" was what Nagios
showed before); ``SERVICE STATE - text | perfdata``; perfdata ``'label'=value[UOM];warn;crit;min;max``
with thresholds in the range syntax; exit 0/1/2/3, a usage error 3; no credential echoed.
"""

from __future__ import annotations

import re

import pytest

from devtools.cluster import free_port
from devtools.hot_standby import HotStandbyCluster
from tests.harness import SidecarProcess, run_cli, wait_for

NUMBER = r"-?[0-9]+(\.[0-9]+)?"
RANGE = rf"@?(~|{NUMBER})?(:({NUMBER})?)?"
PERF_ITEM = rf"'[^'=]+'=(U|{NUMBER}(s|ms|us|%|B|KB|MB|TB|c)?);({RANGE})?;({RANGE})?;({NUMBER})?;({NUMBER})?"
LINE = re.compile(rf"^[A-Z]+ (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+( \| {PERF_ITEM}( {PERF_ITEM})*)?$")
STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def nagios(*args: str) -> tuple[int, str]:
    """Run the command with -o nagios; check the plugin contract; return (exit code, the line)."""
    result = run_cli(*args, "-o", "nagios")
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result
    assert LINE.match(lines[0]), lines[0]
    assert lines[0].split(" ")[1] == STATES[result.returncode], (result.returncode, lines[0])
    return result.returncode, lines[0]


def test_health_ok_warning_critical_unknown(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    code, line = nagios("health", "--url", sidecar.url, "-w", "5", "-c", "10")
    assert code == 0 and line.startswith("DATABASE OK - primary ok (") and ";5;10;0;" in line
    code, line = nagios("health", "--url", sidecar.url, "-w", "0.0000001")  # any real check takes longer
    assert code == 1 and "'primary_latency'=" in line
    code, line = nagios("health", "--url", sidecar.url, "-c", "@0:100")  # inside: alert
    assert code == 2
    code, line = nagios("health", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 3 and "cannot reach the sidecar" in line
    pg.stop_node(pg.primary)
    wait_for(lambda: run_cli("health", "--url", sidecar.url, "-o", "nagios").returncode == 2, what="CRITICAL")
    code, line = nagios("health", "--url", sidecar.url)
    assert code == 2 and "primary connection refused" in line and "'primary_latency'=U;" in line


def test_check_replicas_ok_warning_critical_unknown(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    code, line = nagios("check-replicas", "--url", sidecar.url, "--crit-lag-bytes", "1GB", "-c", "30")
    assert code == 0 and line.startswith("REPLICAS OK - replica-1 streaming")
    assert "'replica-1_lag_bytes'=0B;;1073741824;0;" in line and "'replica-1_lag_seconds'=0s;;30;0;" in line
    code, line = nagios("check-replicas", "--url", sidecar.url, "-w", "@0:1000")
    assert code == 1
    code, line = nagios("check-replicas", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 3
    pg.stop_node(pg.replica_nodes[0])
    wait_for(lambda: run_cli("check-replicas", "--url", sidecar.url).returncode == 2, what="CRITICAL")
    code, line = nagios("check-replicas", "--url", sidecar.url)
    assert code == 2 and "replica-1 down" in line and "'replica-1_lag_bytes'=U;" in line


@pytest.mark.parametrize(
    "args",
    [
        ["check-replicas", "-w", "abc"],
        ["check-replicas", "-c", "20:10"],
        ["check-replicas", "-w", "5", "--warn-lag-seconds", "5"],
        ["check-replicas", "--crit-lag-bytes", "16XB"],
        ["health", "--url", "http://[::1"],
        ["health", "--timeout", "forever"],
    ],
)
def test_usage_errors_are_unknown_with_one_line(args: list[str]) -> None:
    code, line = nagios(*args)
    assert code == 3 and " UNKNOWN - " in line


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://admin:hunter2-secret@127.0.0.1:9/", "hunter2-secret"),
        ("postgresql://app:Db-Passw0rd@db.example:5432/app", "Db-Passw0rd"),
        ("postgresql://app:Db-Passw0rd@db.example:5432/app?sslmode=require", "app:"),
    ],
)
def test_no_credential_from_the_url_is_echoed(url: str, secret: str) -> None:
    for output in ("table", "nagios", "json"):
        result = run_cli("check-replicas", "--url", url, "-o", output)
        assert result.returncode == 3
        assert secret not in result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
