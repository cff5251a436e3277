"""``--kube`` aggregation and exit codes, without a cluster: the pods are real sidecars on loopback."""

from __future__ import annotations

import json

import pytest

from cli.client import SidecarClient
from cli.commands import health as health_cmd
from cli.commands import pools as pools_cmd
from cli.commands import replicas as replicas_cmd
from cli.exitcodes import Exit
from cli.kube import across_pods, emit_across_pods
from service.devcluster import LocalCluster, free_port
from tests.support import SidecarProcess

pytestmark = pytest.mark.integration


def clients(**urls: str) -> dict[str, SidecarClient]:
    return {pod: SidecarClient(url, None, 2.0) for pod, url in urls.items()}


def test_one_row_per_pod_and_the_worst_exit(
    sidecar: SidecarProcess, pg: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    pods = clients(**{"sidecar-a": sidecar.url, "sidecar-b": sidecar.url})
    code, results = across_pods(pods, health_cmd.fetch_health)
    assert code == Exit.OK and [r["pod"] for r in results] == ["sidecar-a", "sidecar-b"]
    emit_across_pods(results, "json", health_cmd.health_table)
    out = json.loads(capsys.readouterr().out)
    assert [p["exit"] for p in out["pods"]] == ["OK", "OK"]
    assert out["pods"][0]["result"]["primary"]["ok"] is True

    gone = clients(**{"sidecar-a": sidecar.url, "sidecar-gone": f"http://127.0.0.1:{free_port()}"})
    code, results = across_pods(gone, health_cmd.fetch_health)
    assert code == Exit.UNKNOWN
    assert results[1]["exit"] == "UNKNOWN" and "cannot reach" in results[1]["error"]

    emit_across_pods(results, "table", health_cmd.health_table)
    table = capsys.readouterr().out
    assert "pod sidecar-a: OK" in table and "pod sidecar-gone: UNKNOWN" in table

    assert pg.primary is not None
    pg.stop(pg.primary)
    import time

    time.sleep(0.3)
    code, _ = across_pods(gone, health_cmd.fetch_health)
    assert code == Exit.CRITICAL  # a definite CRITICAL outranks the unreachable pod's UNKNOWN


def test_replicas_and_pools_across_pods(sidecar: SidecarProcess, pg: LocalCluster) -> None:
    pods = clients(**{"a": sidecar.url, "b": sidecar.url})
    code, results = across_pods(
        pods,
        lambda c: replicas_cmd.fetch(
            c, warn_bytes=None, crit_bytes=None, warn_seconds=None, crit_seconds=None, replica=None
        ),
    )
    assert code == Exit.OK
    line = replicas_cmd.nagios_across_pods(code, results)
    assert line.startswith("REPLICAS OK - a: replica-1 streaming") and "a/replica-1_lag_bytes=0B" in line
    assert "b/replica-1_lag_seconds=" in line and len(line.splitlines()) == 1

    pg.stop(pg.replica_nodes[0])
    import time

    time.sleep(0.3)
    code, results = across_pods(pods, pools_cmd.fetch_and_judge)
    assert code == Exit.WARNING  # a replica pool is not ready
    assert all(r["result"]["pools"][1]["ready"] is False for r in results)
