"""/health/live and /health/db against a real primary + streaming replica, with real faults."""

from __future__ import annotations

import asyncio
import time

import httpx

from devtools.cluster import ADMIN_USER, APP_USER
from devtools.hot_standby import HotStandbyCluster
from fasterdb_sidecar.single_flight import AHEAD
from tests import faults
from tests.harness import SidecarProcess, silent_listener, wait_for

TIMEOUT = 0.5  # FASTERDB_HEALTH_TIMEOUT of the sidecar_env fixture
TTL = 0.25


def assert_no_credentials(text: str, pg: HotStandbyCluster) -> None:
    for secret in (pg.app_password, pg.admin_password):
        assert secret not in text
    assert f"{APP_USER}:" not in text and ADMIN_USER not in text
    assert "postgresql://" not in text


def timed_get(sidecar: SidecarProcess, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = sidecar.get(path, timeout=5)
    return response, time.monotonic() - started


def test_live_and_db_ok(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    assert sidecar.get("/health/live").json() == {"status": "ok"}
    response = sidecar.get("/health/db?replicas=true")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["primary"]["ok"] is True and body["primary"]["error"] is None
    assert isinstance(body["primary"]["latency_ms"], float)
    assert body["checked_at"].endswith("Z") and isinstance(body["age_ms"], int)
    assert [r["name"] for r in body["replicas"]] == ["replica-1"]
    assert body["replicas"][0]["ok"] is True
    assert response.headers["cache-control"] == "no-store"
    assert_no_credentials(response.text, pg)


def test_probes_of_one_check_show_its_growing_age(sidecar: SidecarProcess) -> None:
    """/health/db reuses its last answer only while nothing in it changes: the age of one check
    still grows from probe to probe, and HEAD still gets the GET answer's length."""
    last: dict[str, object] = {}

    def age_grew() -> bool:
        nonlocal last
        body = sidecar.get("/health/db").json()
        grew = body["checked_at"] == last.get("checked_at") and body["age_ms"] > last["age_ms"]  # type: ignore[operator]
        last = body
        return grew

    wait_for(age_grew, 10, interval=0.02, what="two probes of one check, the later one older")
    got, head = sidecar.get("/health/db"), httpx.head(sidecar.url + "/health/db", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert abs(int(head.headers["content-length"]) - len(got.content)) <= 3  # age_ms may gain digits in between


def test_primary_crash_makes_db_unavailable_then_recovers(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    assert sidecar.get("/health/db").status_code == 200
    pg.stop_node(pg.primary, "immediate")
    stopped = time.monotonic()
    went_down_after = None
    while time.monotonic() - stopped < 10:
        response, took = timed_get(sidecar, "/health/db")
        assert took < TIMEOUT + 0.25, f"/health/db took {took:.2f}s"
        if response.status_code == 503:
            went_down_after = time.monotonic() - stopped
            break
    assert went_down_after is not None and went_down_after <= TIMEOUT + TTL + 0.5
    body = response.json()
    assert body["status"] == "unavailable" and body["primary"]["ok"] is False
    assert body["primary"]["error"] in ("connection refused", "connection lost", "connection terminated")
    assert_no_credentials(response.text, pg)
    # Several more probes while it is down: all fast, all 503.
    for _ in range(5):
        response, took = timed_get(sidecar, "/health/db")
        assert response.status_code == 503 and took < TIMEOUT + 0.25

    pg.start_node(pg.primary)
    restarted = time.monotonic()
    wait_for(lambda: sidecar.get("/health/db").status_code == 200, 5, what="ready within 5 s of the restart")
    assert time.monotonic() - restarted < 5
    assert sidecar.proc is not None and sidecar.proc.poll() is None  # same process
    assert_no_credentials(sidecar.logs(), pg)


def test_starts_without_database_and_turns_ready(pg: HotStandbyCluster, sidecar_env: dict[str, str]) -> None:
    pg.stop_node(pg.primary, "immediate")
    with SidecarProcess(sidecar_env) as sidecar:
        assert sidecar.get("/health/live").status_code == 200
        response = sidecar.get("/health/db")
        assert response.status_code == 503
        assert response.json()["primary"]["error"] == "connection refused"
        pg.start_node(pg.primary)
        wait_for(lambda: sidecar.get("/health/db").status_code == 200, 5, what="ready once the primary runs")
        assert_no_credentials(sidecar.logs(), pg)


def test_hanging_database_answers_within_the_deadline(sidecar_env: dict[str, str]) -> None:
    with silent_listener() as listener:
        env = dict(sidecar_env, FASTERDB_PRIMARY_DSN=f"postgresql://u:pw-hang-1234@127.0.0.1:{listener.port}/db")
        env["FASTERDB_CONNECT_TIMEOUT"] = "30"  # asyncpg's own timeout would be far too late
        with SidecarProcess(env) as sidecar:
            for _ in range(3):
                response, took = timed_get(sidecar, "/health/db")
                assert response.status_code == 503
                assert response.json()["primary"]["error"] == "timeout"
                assert took < TIMEOUT + 0.25
                time.sleep(TTL)
            assert sidecar.get("/health/live").status_code == 200
            assert "pw-hang-1234" not in sidecar.logs()


def test_wrong_password_is_authentication_failed(pg: HotStandbyCluster, sidecar_env: dict[str, str]) -> None:
    env = dict(sidecar_env, FASTERDB_PRIMARY_DSN=pg.dsn(password="Wrong-Password-xyz"))
    with SidecarProcess(env) as sidecar:
        response = sidecar.get("/health/db")
        assert response.status_code == 503
        assert response.json()["primary"]["error"] == "authentication failed"
        assert "Wrong-Password-xyz" not in response.text
        logs = wait_for(lambda: "authentication failed" in (text := sidecar.logs()).lower() and text)
        assert "Wrong-Password-xyz" not in logs


def test_primary_pointing_at_a_replica_is_not_primary(pg: HotStandbyCluster, sidecar_env: dict[str, str]) -> None:
    replica = pg.replica_nodes[0]
    env = dict(sidecar_env, FASTERDB_PRIMARY_DSN=pg.dsn(replica), FASTERDB_REPLICA_DSNS=f"wrong={pg.dsn()}")
    with SidecarProcess(env) as sidecar:
        response = sidecar.get("/health/db?replicas=true")
        assert response.status_code == 503
        body = response.json()
        assert body["primary"]["error"] == "not primary"
        assert body["replicas"][0]["error"] == "not replica"


def _calls(pg: HotStandbyCluster) -> int:
    out = pg.sql(
        pg.primary,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'SELECT pg_is_in_recovery(), %'",
    )
    return int(out)


def test_300_concurrent_probes_cost_a_handful_of_queries(pg: HotStandbyCluster, sidecar_env: dict[str, str]) -> None:
    # No background monitor: every check in the window is caused by the burst.
    env = dict(
        sidecar_env,
        FASTERDB_HEALTH_TIMEOUT="1.0",
        FASTERDB_HEALTH_CACHE_TTL="1.0",
        FASTERDB_MONITOR_INTERVAL="0",
    )
    with SidecarProcess(env) as sidecar:
        pg.sql(pg.primary, "SELECT pg_stat_statements_reset()")
        assert _calls(pg) == 0

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
            async with httpx.AsyncClient(base_url=sidecar.url, timeout=10, limits=limits) as client:
                responses = await asyncio.gather(*(client.get("/health/db") for _ in range(300)))
            return [r.status_code for r in responses]

        started = time.monotonic()
        statuses = asyncio.run(burst())
        elapsed = time.monotonic() - started
        assert statuses == [200] * 300
        calls = _calls(pg)
        # One query per refresh-ahead span (AHEAD of the TTL) that the burst covers, plus one for
        # a boundary: what the database sees does not grow with the number of probes.
        assert 1 <= calls <= int(elapsed / (1.0 * AHEAD)) + 2, (calls, elapsed)


def test_a_cached_failure_ends_with_the_fault_whatever_the_ttl(
    pg: HotStandbyCluster, sidecar_env: dict[str, str]
) -> None:
    # A 60 s TTL and no background monitor: the failures below are seen by the first probes, and
    # only a re-check on a later probe (not the TTL) can turn them into 200 once the fault is over.
    env = dict(
        sidecar_env,
        FASTERDB_HEALTH_CACHE_TTL="60",
        FASTERDB_MONITOR_INTERVAL="0",
        FASTERDB_MAX_LAG_BYTES="1kB",
    )
    replica = pg.replica_nodes[0]
    faults.pause_replay(pg, replica)
    try:
        faults.write_wal(pg, 0.1)
        thaw = faults.freeze(pg.primary)
        try:
            sidecar = SidecarProcess(env).start()
        except BaseException:
            thaw()
            raise
        with sidecar:
            try:
                response = sidecar.get("/health/db")
                assert response.status_code == 503 and response.json()["primary"]["error"] == "timeout"
            finally:
                thaw()
            wait_for(lambda: sidecar.get("/health/db").status_code == 200, 10, what="200 once the primary is thawed")
    finally:
        faults.resume_replay(pg, replica)
    # The pause again with this sidecar (its ok measurement is cached 60 s: force the fault before it).
    with SidecarProcess(env) as sidecar:
        faults.pause_replay(pg, replica)
        try:
            faults.write_wal(pg, 0.1)
            body = sidecar.get("/health/replicas").json()
            assert body["status"] == "lagging" and body["replicas"][0]["state"] == "replay_paused"
        finally:
            faults.resume_replay(pg, replica)
        wait_for(lambda: sidecar.get("/health/replicas").status_code == 200, 10, what="200 once replay resumes")


def test_unknown_route_and_method_use_the_error_body(sidecar: SidecarProcess) -> None:
    response = sidecar.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such endpoint: GET /nope"}}
    response = sidecar.get("/health/db?replicas=perhaps")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_sigterm_lets_an_inflight_probe_finish_and_closes_pools(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    import threading

    with silent_listener() as listener:
        env = dict(
            sidecar_env,
            FASTERDB_PRIMARY_DSN=f"postgresql://u:p@127.0.0.1:{listener.port}/db",
            FASTERDB_HEALTH_TIMEOUT="1.0",
        )
        sidecar = SidecarProcess(env).start()
        result: dict[str, int] = {}

        def probe() -> None:
            result["status"] = sidecar.get("/health/db").status_code

        before = listener.accepted
        thread = threading.Thread(target=probe)
        thread.start()
        wait_for(lambda: listener.accepted > before, what="the probe waits on the hanging database")
        code = sidecar.stop()
        thread.join()
        assert result["status"] == 503  # answered, not cut off
        assert code == 0
        assert "sidecar stopped" in sidecar.logs()


def test_sigterm_closes_database_connections(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    sidecar = SidecarProcess(sidecar_env).start()
    assert sidecar.get("/health/db").status_code == 200
    ports = ",".join(str(p) for p in sidecar.client_ports())
    count = "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(string_to_array(:'ports', ',')::int[])"
    assert int(pg.sql(pg.primary, count, params={"ports": ports})) >= 1
    assert sidecar.stop() == 0
    wait_for(
        lambda: int(pg.sql(pg.primary, count, params={"ports": ports})) == 0,
        5,
        what="this sidecar's connections closed",
    )
