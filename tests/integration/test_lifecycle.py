"""The sidecar's lifecycle as kubelet sees it: start-up, SIGTERM, drain, the cut-off, exit 0."""

from __future__ import annotations

import signal
import threading
import time
from decimal import Decimal

import httpx

from devtools.cluster import free_port
from devtools.hot_standby import HotStandbyCluster
from fasterdb_sidecar.drain import STOP_SECONDS
from tests import faults
from tests.harness import SidecarProcess, silent_listener, wait_for

TOKEN = "lifecycle-token-" + "x" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The documented bound of a stop (fasterdb_sidecar.drain): the minimum drain, the drain limit,
# then the cut-off requests' answers and the pools' close.
CUT_OFF_AND_CLOSE = STOP_SECONDS


def test_startup_waits_for_the_first_connection_attempt_not_for_the_database(sidecar_env: dict[str, str]) -> None:
    # A primary that accepts TCP and never answers: the first attempt ends at the connect timeout.
    with silent_listener() as listener:
        env = dict(
            sidecar_env,
            FASTERDB_PRIMARY_DSN=f"postgresql://u:p@127.0.0.1:{listener.port}/db",
            FASTERDB_CONNECT_TIMEOUT="1.5",
        )
        with SidecarProcess(env) as sidecar:
            early = sidecar.get("/health/startup")
            started = time.monotonic()
            if early.status_code == 503:  # the usual case: the attempt is still running
                body = early.json()
                assert body["status"] == "starting" and body["pools"]["primary"] is False
                assert "primary" in body["reason"]
            late = wait_for(lambda: (r := sidecar.get("/health/startup")).status_code == 200 and r, 5, what="started")
            assert time.monotonic() - started < 1.5 + 1.0
            assert late.json() == {
                "status": "started",
                "state": "serving",
                "pools": {"primary": True, "replica-1": True},
                "reason": None,
            }
            # Started, and not ready: the database is down, the application may start anyway.
            assert sidecar.get("/health/db").status_code == 503
            assert sidecar.get("/health/live").status_code == 200


def test_startup_can_require_the_primary(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    down = dict(
        sidecar_env,
        FASTERDB_PRIMARY_DSN=f"postgresql://u:p@127.0.0.1:{free_port()}/db",
        FASTERDB_STARTUP_REQUIRE_PRIMARY="true",
    )
    with SidecarProcess(down) as sidecar:
        # Every pool's first attempt done (the replica's may end after the primary's refusal; until
        # then the reason is "first connection attempt still running").
        response = wait_for(
            lambda: all((r := sidecar.get("/health/startup")).json()["pools"].values()) and r, what="attempts done"
        )
        assert response.status_code == 503
        assert "FASTERDB_STARTUP_REQUIRE_PRIMARY" in response.json()["reason"]
    with SidecarProcess(dict(sidecar_env, FASTERDB_STARTUP_REQUIRE_PRIMARY="true")) as sidecar:
        wait_for(lambda: sidecar.get("/health/startup").status_code == 200, what="started with the primary")


def test_sigterm_fails_readiness_at_once_and_serves_through_the_minimum_drain(sidecar_env: dict[str, str]) -> None:
    env = dict(sidecar_env, FASTERDB_DRAIN_MIN_SECONDS="1.5", FASTERDB_SHUTDOWN_TIMEOUT="0.5")
    sidecar = SidecarProcess(env).start()
    try:
        assert sidecar.get("/health/db").status_code == 200
        assert sidecar.proc is not None
        sent = time.monotonic()
        sidecar.proc.send_signal(signal.SIGTERM)
        # The very first probe after the signal: no waiting for the kubelet to notice.
        response = wait_for(lambda: (r := sidecar.get("/health/db")).status_code == 503 and r, 1.0, 0.01)
        assert response.json()["status"] == "draining" and response.json()["reason"] == "draining"
        assert response.json()["primary"]["name"] == "primary"
        # Still serving while endpoints update: liveness, start-up (stays passed), other routes.
        assert sidecar.get("/health/live").status_code == 200
        startup = sidecar.get("/health/startup")
        assert startup.status_code == 200 and startup.json()["state"] == "draining"
        assert sidecar.get("/pools").status_code == 200
        code = sidecar.proc.wait(timeout=1.5 + 0.5 + CUT_OFF_AND_CLOSE + 3)
        elapsed = time.monotonic() - sent
        assert code == 0
        assert elapsed >= 1.5  # the minimum drain was honoured
        logs = sidecar.logs()
        assert "SIGTERM: draining" in logs and "sidecar stopped" in logs and "Traceback" not in logs
    finally:
        sidecar.stop()


def test_a_request_cut_off_at_the_drain_limit_gets_the_json_503_and_is_rolled_back(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    schema = "t_lifecycle"
    env = dict(
        sidecar_env,
        FASTERDB_ADMIN_TOKEN=TOKEN,
        FASTERDB_SCHEMA=schema,
        FASTERDB_SHUTDOWN_TIMEOUT="0.5",  # below one second: was "no limit at all"
        FASTERDB_RETRY_BUDGET="30",
    )
    sidecar = SidecarProcess(env).start()
    try:
        assert httpx.post(sidecar.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
        for account, balance in ((1, "100.00"), (2, "0.00")):
            created = httpx.post(sidecar.url + "/accounts", json={"id": account, "balance": balance}, headers=AUTH)
            assert created.status_code == 201, created.text
        transfer = {"from_account": 1, "to_account": 2, "amount": "10.00", "idempotency_key": "cut-off-1"}
        result: dict[str, httpx.Response] = {}

        def post() -> None:
            result["response"] = httpx.post(sidecar.url + "/transfers", json=transfer, headers=AUTH, timeout=30)

        with faults.row_locked(pg, f"{schema}.accounts", 1):
            thread = threading.Thread(target=post)
            thread.start()
            waiting = (
                f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%{schema}%'"
            )
            wait_for(lambda: pg.sql(pg.primary, waiting) == "1", what="the transfer waits on the row lock")
            assert sidecar.proc is not None
            ports = ",".join(str(p) for p in sidecar.client_ports())
            sent = time.monotonic()
            sidecar.proc.send_signal(signal.SIGTERM)
            thread.join(timeout=10)
            answered = time.monotonic() - sent
            code = sidecar.proc.wait(timeout=10)
            exited = time.monotonic() - sent
            # The server stopped the cut-off statement while the lock is still held: its client
            # closed the connection (client_connection_check_interval), so it cannot apply later.
            leftover = (
                "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(string_to_array(:'ports', ',')::int[])"
            )
            wait_for(lambda: pg.sql(pg.primary, leftover, params={"ports": ports}) == "0", 5, what="its backends gone")
        response = result["response"]
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["code"] == "shutting_down"
        assert "safe" in response.json()["error"]["message"]
        assert answered < 0.5 + 1.0, answered  # at the limit, not after the lock was released
        assert code == 0 and exited < 0.5 + CUT_OFF_AND_CLOSE + 1.0, (code, exited)
        assert "Traceback" not in sidecar.logs()
        # Stopped: no money moved, no transfer row, also after the lock was released.
        balances = pg.sql(pg.primary, f"SELECT string_agg(balance::text, ',' ORDER BY id) FROM {schema}.accounts")
        assert [Decimal(b) for b in balances.split(",")] == [Decimal("100.00"), Decimal("0.00")]
        assert pg.sql(pg.primary, f"SELECT count(*) FROM {schema}.transfers") == "0"
        # The retry the answer promised is safe: applied once.
        with SidecarProcess(env) as again:
            retried = httpx.post(again.url + "/transfers", json=transfer, headers=AUTH, timeout=30)
            assert retried.status_code == 200 and retried.json()["duplicate"] is False
    finally:
        sidecar.stop()
        pg.sql(pg.primary, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
