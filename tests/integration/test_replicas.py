"""/health/replicas and ``fasterdb-admin check-replicas`` against a real primary + streaming replica."""

from __future__ import annotations

import json
import re
import time

import pytest

from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.faults import write_wal
from tests.harness import SidecarProcess, run_cli, wait_for

MB = 1024 * 1024
HEALTH_TIMEOUT = 0.5  # FASTERDB_HEALTH_TIMEOUT of the sidecar_env fixture: the documented deadline


def replicas(sidecar: SidecarProcess, query: str = "") -> tuple[int, dict]:  # type: ignore[type-arg]
    response = sidecar.get("/health/replicas" + query)
    return response.status_code, response.json()


def test_caught_up_replica_is_ok(sidecar: SidecarProcess) -> None:
    status, body = wait_for(lambda: (r := replicas(sidecar))[0] == 200 and r)
    assert body["status"] == "ok"
    assert body["max_lag_bytes"] == 16 * MB and body["max_lag_seconds"] == 10
    assert body["primary_lsn"] and "/" in body["primary_lsn"]
    (replica,) = body["replicas"]
    assert replica["name"] == "replica-1" and replica["state"] == "streaming" and replica["ok"] is True
    assert replica["lag_bytes"] == 0 and replica["lag_seconds"] == 0
    assert replica["error"] is None


def test_each_answer_follows_its_own_parameters(sidecar: SidecarProcess) -> None:
    """Requests with other parameters between two of one measurement get their own answer (the
    endpoint reuses its last answer only for the same measurement, age and parameters)."""
    wait_for(lambda: replicas(sidecar)[0] == 200, what="replica ok")
    for i in range(40):
        limit = (i % 4 + 1) * MB
        status, body = replicas(sidecar, f"?max_lag_bytes={limit}")
        assert status == 200 and body["max_lag_bytes"] == limit
    assert replicas(sidecar, "?max_lag_seconds=0")[1]["max_lag_seconds"] == 0
    assert replicas(sidecar)[1]["max_lag_seconds"] == 10


def test_paused_replay_lags_in_bytes_then_recovers(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    replica = pg.replica_nodes[0]
    wait_for(lambda: replicas(sidecar)[0] == 200)  # seen caught up: the monitor has a history
    faults.pause_replay(pg, replica)
    written = write_wal(pg, 8)
    status, body = wait_for(
        lambda: (r := replicas(sidecar, "?max_lag_bytes=1MB"))[1]["replicas"][0]["lag_bytes"] >= written and r,
        what="the lag measured",
    )
    assert status == 503 and body["status"] == "lagging"
    (r,) = body["replicas"]
    assert r["state"] == "replay_paused" and r["ok"] is False
    assert r["lag_bytes"] >= written >= 8 * MB
    assert r["receive_lag_bytes"] < r["lag_bytes"]  # still receiving, not replaying
    assert r["lag_seconds"] > 0
    status, body = replicas(sidecar, "?max_lag_bytes=1gb")
    assert status == 200 and body["replicas"][0]["state"] == "replay_paused"

    # paused and behind: the seconds grow
    wait_for(lambda: replicas(sidecar, "?max_lag_bytes=1GB")[1]["replicas"][0]["lag_seconds"] >= 1.5, what="1.5 s")
    status, body = replicas(sidecar, "?max_lag_bytes=1GB&max_lag_seconds=1")
    assert status == 503

    crit = run_cli("check-replicas", "--url", sidecar.url, "--crit-lag-bytes", "1MB")
    assert crit.returncode == 2, crit.stderr
    assert "replica-1" in crit.stdout
    warn = run_cli("check-replicas", "--url", sidecar.url, "--warn-lag-bytes", "1MB")
    assert warn.returncode == 1, warn.stderr
    nagios = run_cli(
        "check-replicas",
        "--url",
        sidecar.url,
        "--warn-lag-bytes",
        "1MB",
        "--crit-lag-bytes",
        "1GB",
        "--output",
        "nagios",
    )
    assert nagios.returncode == 1
    line = nagios.stdout.strip()
    assert line.startswith("REPLICAS WARNING") and "|" in line and len(nagios.stdout.splitlines()) == 1
    assert re.search(rf"'replica-1_lag_bytes'=\d+B;{MB};{1024 * MB};0;( |$)", line), line
    assert re.search(r"'replica-1_lag_seconds'=[\d.]+s;;10;0;( |$)", line), line

    faults.resume_replay(pg, replica)
    wait_for(lambda: replicas(sidecar, "?max_lag_bytes=1MB")[0] == 200, timeout=10)
    ok = run_cli("check-replicas", "--url", sidecar.url, "--crit-lag-bytes", "1MB", "-o", "json")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["replicas"][0]["state"] == "streaming"


def test_idle_primary_keeps_lag_seconds_near_zero(sidecar: SidecarProcess) -> None:
    wait_for(lambda: replicas(sidecar)[0] == 200)
    seen = []
    for _ in range(8):  # several seconds without writes
        status, body = replicas(sidecar)
        seen.append(body["replicas"][0]["lag_seconds"])
        assert status == 200
        time.sleep(0.5)  # spaces the samples over seconds of idleness: the span is what is tested
    assert max(seen) < 1.0, seen


def test_stopped_replica_is_down_within_the_deadline(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    pg.stop_node(pg.replica_nodes[0])
    wait_for(lambda: replicas(sidecar)[1]["replicas"][0]["state"] == "down", what="replica down")
    started = time.monotonic()
    status, body = replicas(sidecar)
    assert time.monotonic() - started < HEALTH_TIMEOUT + 0.5  # answered within the documented deadline
    assert status == 503 and body["status"] == "unavailable"
    r = body["replicas"][0]
    assert r["state"] == "down" and r["ok"] is False and r["error"] == "connection refused"
    result = run_cli("check-replicas", "--url", sidecar.url)
    assert result.returncode == 2
    db = sidecar.get("/health/db?replicas=true").json()
    assert db["status"] == "ok" and db["replicas"][0]["ok"] is False  # readiness follows the primary


def test_cut_wal_receiver_is_not_healthy(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    replica = pg.replica_nodes[0]
    wait_for(lambda: replicas(sidecar)[0] == 200)
    faults.cut_wal_receiver(pg, replica)
    try:
        pg.sql(pg.primary, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
        write_wal(pg, 1)

        def cut() -> dict | None:  # type: ignore[type-arg]
            status, body = replicas(sidecar, "?max_lag_bytes=1GB&max_lag_seconds=3600")
            return body if status == 503 else None

        body = wait_for(cut, timeout=10)
        r = body["replicas"][0]
        assert r["state"] == "disconnected" and r["ok"] is False
        assert r["lag_bytes"] > 0
    finally:
        faults.restore_wal_receiver(pg, replica)


@pytest.mark.parametrize(
    "query",
    [
        "?max_lag_bytes=16XB",
        "?max_lag_bytes=-1",
        "?max_lag_bytes=abc",
        "?max_lag_bytes=",
        "?max_lag_seconds=abc",
        "?max_lag_seconds=-1",
        "?max_lag_seconds=nan",
        "?replica=nope",
    ],
)
def test_bad_parameters_are_400(sidecar: SidecarProcess, query: str) -> None:
    status, body = replicas(sidecar, query)
    assert status == 400
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["message"]


@pytest.mark.parametrize("size", ["16MB", "16mb", "16MiB", "16kB", "1048576", "0"])
def test_sizes_are_accepted(sidecar: SidecarProcess, size: str) -> None:
    status, body = replicas(sidecar, f"?max_lag_bytes={size}&replica=replica-1")
    assert status in (200, 503)
    assert body["max_lag_bytes"] in (16 * MB, 16 * 1024, 1048576, 0)
    assert [r["name"] for r in body["replicas"]] == ["replica-1"]


def test_cli_usage_errors_are_unknown(sidecar: SidecarProcess) -> None:
    result = run_cli("check-replicas", "--url", sidecar.url, "--crit-lag-bytes", "16XB")
    assert result.returncode == 3 and "16XB" in result.stderr
    result = run_cli("check-replicas", "--url", sidecar.url, "--warn-lag-bytes", "2MB", "--crit-lag-bytes", "1MB")
    assert result.returncode == 3


def test_no_false_lagging_after_a_primary_freeze(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    """The old main said 503 lagging, lag_seconds ~ the freeze, for a replica a few bytes behind.

    The sidecar samples only on request here (a long refresh interval), so its history holds
    exactly: caught up before the freeze, failed reads during it, the primary moved on after it.
    Replay is paused after the thaw only to hold the replica behind while we look.
    """
    env = dict(sidecar_env, FASTERDB_MONITOR_INTERVAL="600")
    replica = pg.replica_nodes[0]
    with SidecarProcess(env) as sidecar:
        wait_for(lambda: replicas(sidecar)[1]["replicas"][0]["lag_bytes"] == 0, what="caught up")
        with faults.frozen(pg.primary):
            frozen_at = time.monotonic()
            unknown = "lag unknown: primary timeout"
            wait_for(lambda: replicas(sidecar)[1]["replicas"][0]["error"] == unknown, what="reads fail")
            while time.monotonic() - frozen_at < 4.0:  # every read of the frozen primary fails
                status, body = replicas(sidecar)
                assert status == 503 and body["replicas"][0]["error"] == unknown
        faults.pause_replay(pg, replica)
        write_wal(pg, 0.1)
        status, body = wait_for(
            lambda: (
                (r := replicas(sidecar, "?max_lag_bytes=1GB&max_lag_seconds=2"))[1]["replicas"][0]["lag_bytes"] and r
            ),
            what="the primary seen past the replica",
        )
        r = body["replicas"][0]
        assert r["lag_seconds"] < 2.0, r  # not the 4 s of the freeze: nothing was sampled over it
        assert status == 200 and body["status"] == "ok"
