"""Pool statistics: /pools, /pools/stream, /metrics and ``fasterdb-admin pool-stats``, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.cluster import APP_USER
from devtools.hot_standby import HotStandbyCluster
from fasterdb.errors import DatabaseUnavailable
from tests.harness import ROOT, InProcessSidecar, SidecarProcess, clean_environ, run_cli, wait_for


def pool(doc: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(p for p in doc["pools"] if p["name"] == name)


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # An empty label value is no label (Prometheus' reading): the sidecar's own pools have no app.
            out[(sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if v)))] = sample.value
    return out


def test_waiting_in_use_histogram_and_timeouts(sidecar_env: dict[str, str]) -> None:
    env = dict(sidecar_env, FASTERDB_POOL_MIN_SIZE="1", FASTERDB_POOL_MAX_SIZE="2", FASTERDB_MONITOR_INTERVAL="0")
    with InProcessSidecar(env) as app:
        primary = app.sidecar.databases.primary
        release = asyncio.Event()
        holding = []

        async def hold() -> None:
            async with primary.acquire(timeout=5):
                holding.append(1)
                await release.wait()

        async def waiter() -> float:
            started = time.monotonic()
            async with primary.acquire(timeout=10) as conn:
                await conn.fetchval("SELECT 1")
            return time.monotonic() - started

        before = primary.stats.wait_count
        holders = [app.submit(hold) for _ in range(2)]
        wait_for(lambda: len(holding) == 2, 10, 0.02, "both connections held")
        waiters = [app.submit(waiter) for _ in range(3)]
        queued_at = time.monotonic()
        p = wait_for(lambda: (q := pool(app.get("/pools").json(), "primary"))["waiting"] >= 3 and q, what="3 waiting")
        assert p["in_use"] == 2 and p["waiting"] >= 3 and p["size"] == 2 and p["max_size"] == 2
        assert p["idle"] == 0 and p["ready"] is True  # /pools and /health/db agree on readiness
        assert app.get("/health/db").status_code == 200  # a full pool is not a down database

        async def too_short() -> str:
            try:
                async with primary.acquire(timeout=0.05):
                    return "acquired"
            except DatabaseUnavailable as exc:
                return exc.category

        assert app.call(too_short) == "timeout"
        time.sleep(max(0.0, 0.3 - (time.monotonic() - queued_at)))  # the condition: three waits of >= 0.3 s
        app.loop.call_soon_threadsafe(release.set)
        waits = [f.result(10) for f in waiters]
        for f in holders:
            f.result(10)
        assert all(w >= 0.25 for w in waits)
        p = pool(app.get("/pools").json(), "primary")
        assert p["waiting"] == 0 and p["in_use"] == 0
        assert p["acquire_timeouts_total"] == 1
        assert p["acquire_wait_ms"]["max"] >= 250
        stats = primary.stats
        assert stats.wait_count >= before + 6
        slow = dict(stats.cumulative_buckets())
        assert slow["+Inf"] - slow["0.25"] >= 3  # the three waiters sat more than 250 ms

        m = metrics(app.url)
        assert m[("fasterdb_pool_acquire_timeouts_total", (("pool", "primary"), ("source", "sidecar")))] == 1
        assert (
            m[("fasterdb_pool_acquire_wait_seconds_count", (("pool", "primary"), ("source", "sidecar")))]
            == stats.wait_count
        )


def test_metrics_names_and_labels(sidecar: SidecarProcess) -> None:
    assert sidecar.get("/health/replicas").status_code == 200  # fills the lag cache
    m = metrics(sidecar.url)
    for name in (
        "fasterdb_pool_size",
        "fasterdb_pool_idle",
        "fasterdb_pool_in_use",
        "fasterdb_pool_waiting",
    ):
        assert m[(name, (("pool", "primary"), ("source", "sidecar")))] >= 0
        assert (name, (("pool", "replica-1"), ("source", "sidecar"))) in m
    assert m[("fasterdb_db_up", (("pool", "primary"),))] == 1.0
    assert (
        "fasterdb_pool_acquire_wait_seconds_bucket",
        (("le", "+Inf"), ("pool", "primary"), ("source", "sidecar")),
    ) in m
    assert m[("fasterdb_replica_lag_bytes", (("replica", "replica-1"),))] == 0
    assert ("fasterdb_replica_lag_seconds", (("replica", "replica-1"),)) in m
    families = {f.name: f.type for f in text_string_to_metric_families(sidecar.get("/metrics").text)}
    assert families["fasterdb_pool_acquire_wait_seconds"] == "histogram"
    assert families["fasterdb_transfers"] == "counter"
    assert sidecar.get("/metrics").headers["content-type"].startswith("text/plain")


def test_metrics_scrapes_cost_one_catalog_round_per_ttl_and_no_health_query(
    pg: HotStandbyCluster, sidecar_env: dict[str, str]
) -> None:
    # The statements are counted by role: this sidecar logs in as a role of its own (a member of the
    # application's), so the module's other sidecars' background rounds (the refresher, the fence)
    # never fall into the count, however the scrapes are scheduled on a loaded machine.
    role, password = "fasterdb_scrapes", "scrapes-Pw-1"
    pg.sql(
        pg.primary,
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE {APP_USER}; END IF; END$$",
    )
    for node in pg.replica_nodes:
        wait_for(lambda n=node: pg.sql(n, f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'") == "1", 30)
    # No background work either (the monitor, the split-brain fence's rounds): only the scrapes count.
    env = dict(
        sidecar_env,
        FASTERDB_PRIMARY_DSN=pg.dsn(user=role, password=password),
        FASTERDB_REPLICA_DSNS=",".join(f"{n.name}={pg.dsn(n, user=role, password=password)}" for n in pg.replica_nodes),
        FASTERDB_MONITOR_INTERVAL="0",
        FASTERDB_SPLIT_BRAIN_CHECK_INTERVAL="0",
        FASTERDB_CATALOG_CACHE_TTL="30",
    )
    with SidecarProcess(env) as sidecar:
        sidecar.get("/health/db")
        pg.sql(pg.primary, "SELECT pg_stat_statements_reset()")
        for _ in range(20):
            assert sidecar.get("/metrics").status_code == 200
        calls = pg.sql(
            pg.primary,
            "SELECT string_agg(calls::text || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 40), E'\\n') "
            f"FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '{role}'",
        )
        # One round of the three catalog views (the fasterdb_pg_* metrics) for 20 scrapes inside
        # the TTL; the pool, health and lag metrics come from memory.
        statements = sorted(calls.splitlines())
        assert len(statements) == 3 and all(line.startswith("1 ") for line in statements), statements


def test_stream_delivers_events_at_the_interval(sidecar: SidecarProcess) -> None:
    stamps, docs = [], []
    with httpx.stream("GET", sidecar.url + "/pools/stream?interval=0.3", timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                docs.append(json.loads(line[5:]))
                stamps.append(time.monotonic())
                if len(docs) == 3:
                    break
    assert [p["name"] for p in docs[0]["pools"]] == ["primary", "replica-1"]
    # The stream never runs ahead of its interval (how late an event arrives depends on the load).
    assert stamps[-1] - stamps[0] >= 2 * 0.3 * 0.9, stamps
    for bad in ("0", "abc", "1000", "-1"):
        assert sidecar.get(f"/pools/stream?interval={bad}").status_code == 400


def test_primary_down_shows_in_pools_and_metrics(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    assert pool(sidecar.get("/pools").json(), "primary")["ready"] is True
    pg.stop_node(pg.primary)
    doc = wait_for(lambda: not pool(d := sidecar.get("/pools").json(), "primary")["ready"] and d, what="not ready")
    assert pool(doc, "primary")["error"] == "connection refused"
    assert pool(doc, "replica-1")["ready"] is True
    assert metrics(sidecar.url)[("fasterdb_db_up", (("pool", "primary"),))] == 0.0
    pg.start_node(pg.primary)
    wait_for(lambda: pool(sidecar.get("/pools").json(), "primary")["ready"], 5, 0.1, "ready again")
    assert metrics(sidecar.url)[("fasterdb_db_up", (("pool", "primary"),))] == 1.0


def test_cli_pool_stats_json_matches_pools(sidecar: SidecarProcess) -> None:
    result = run_cli("pool-stats", "--url", sidecar.url, "--output", "json")
    assert result.returncode == 0, result.stderr
    cli_doc = json.loads(result.stdout)
    api_doc = sidecar.get("/pools").json()
    assert [p["name"] for p in cli_doc["pools"]] == [p["name"] for p in api_doc["pools"]]
    stable = ("name", "role", "ready", "min_size", "max_size")
    assert [{k: p[k] for k in stable} for p in cli_doc["pools"]] == [
        {k: p[k] for k in stable} for p in api_doc["pools"]
    ]
    table = run_cli("pool-stats", "--url", sidecar.url)
    assert table.returncode == 0 and "primary" in table.stdout and "waiting" in table.stdout


def test_cli_pool_stats_exit_codes(sidecar: SidecarProcess, pg: HotStandbyCluster) -> None:
    pg.stop_node(pg.replica_nodes[0])
    wait_for(lambda: run_cli("pool-stats", "--url", sidecar.url).returncode == 1, what="exit 1")
    pg.stop_node(pg.primary)
    wait_for(lambda: run_cli("pool-stats", "--url", sidecar.url).returncode == 2, what="exit 2")
    unreachable = run_cli("pool-stats", "--url", "http://127.0.0.1:1", "--timeout", "1")
    assert unreachable.returncode == 3 and unreachable.stderr.startswith("fasterdb-admin: cannot reach")


def test_cli_watch_renders_frames(sidecar: SidecarProcess) -> None:
    result = run_cli("pool-stats", "--url", sidecar.url, "--watch", "--interval", "0.2", "--frames", "3", "-o", "json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["pools"] for line in lines)
    # Not a terminal: every event is printed as it comes, not one table at exit.
    table = run_cli("pool-stats", "--url", sidecar.url, "--watch", "--interval", "0.2", "--frames", "3")
    assert table.returncode == 0 and table.stdout.count("replica-1") == 3


def watch_process(url: str, *args: str) -> subprocess.Popen[str]:
    """``fasterdb-admin pool-stats --watch`` as a real process (signals and pipes are the point)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from fasterdb_admin.main import main; main()",
            "pool-stats",
            "--url",
            url,
            "--watch",
            "--interval",
            "0.2",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environ(),
        # A terminal's Ctrl-C reaches a foreground process even when this run was started with
        # SIGINT ignored (nohup make test &): give the child the default disposition explicitly.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_cli_watch_ctrl_c_exits_cleanly(sidecar: SidecarProcess) -> None:
    proc = watch_process(sidecar.url)
    assert proc.stdout is not None and proc.stderr is not None
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(proc.stdout or []), daemon=True)
    reader.start()
    # Ctrl-C during an open stream: once the first table is out, the stream is open.
    wait_for(lambda: any("replica-1" in line for line in seen) or proc.poll() is not None, 30, what="the first frame")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0, proc.stderr.read()
    reader.join(10)
    err = proc.stderr.read()
    assert "primary" in "".join(seen) and err == ""
    # The sidecar's side of the stream ended with it: none left open (each Ctrl-C used to leak one).
    wait_for(lambda: 'fasterdb_streams_open{stream="pools"} 0.0' in sidecar.get("/metrics").text, 10, 0.05)


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_pipe_closed_early_ends_quietly_with_0(sidecar: SidecarProcess, output: str) -> None:
    """``pool-stats --watch -o json | head -1``: the reader leaves after one line; that is no failure."""
    proc = watch_process(sidecar.url, "-o", output)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().strip()
    proc.stdout.close()  # what head does after its line
    assert proc.wait(10) == 0
    assert proc.stderr.read() == ""


def test_sigterm_ends_open_streams_promptly(sidecar_env: dict[str, str]) -> None:
    sidecar = SidecarProcess(sidecar_env).start()
    with httpx.stream("GET", sidecar.url + "/pools/stream?interval=5", timeout=10) as response:
        next(response.iter_lines())
        started = time.monotonic()
        assert sidecar.stop() == 0
        assert time.monotonic() - started < 3  # not the 10 s drain timeout


def test_stream_interval_fuzzed(sidecar: SidecarProcess) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.text(max_size=12),
        st.sampled_from(["0.1", "60", "1e1", "0.09", "60.01", "", " 1 "]),
    )

    @given(value=values)
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(value: str) -> None:
        with httpx.stream("GET", sidecar.url + "/pools/stream", params={"interval": value}, timeout=5) as r:
            # The documented form: ASCII digits, optionally a point (no exponent, sign or spaces).
            ok = re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,9})?", value, re.ASCII) is not None and 0.1 <= float(value) <= 60
            assert r.status_code == (200 if ok else 400), (value, r.status_code)
            if r.status_code == 200:
                assert next(line for line in r.iter_lines() if line.startswith("data:"))

    check()
