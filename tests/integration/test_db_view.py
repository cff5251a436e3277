"""/db/activity, /db/slots, /db/wraparound, /db/budget, their CLI commands and metrics.

Every condition is created for real (a session idle in transaction, a lock queue, an inactive slot
with WAL written past it, connections opened up to the limit), and every figure is checked
against what PostgreSQL's own views say in the same test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.cluster import TempCluster
from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.harness import CliResult, SidecarProcess, run_cli, wait_for

TOKEN = "db-view-token-" + "x" * 16
TTL = 0.2  # FASTERDB_CATALOG_CACHE_TTL of these sidecars: fresh views, still cached per burst


@pytest.fixture(scope="module")
def viewer(sidecar_env: dict[str, str]) -> Iterator[SidecarProcess]:
    """A sidecar with an admin token and a short catalog TTL, shared by this module."""
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_CATALOG_CACHE_TTL=str(TTL))
    with SidecarProcess(env) as proc:
        yield proc


def get(sidecar: SidecarProcess, path: str, **kw: Any) -> dict[str, Any]:
    response = sidecar.get(path, **kw)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cli(sidecar: SidecarProcess, *args: str) -> CliResult:
    return run_cli(*args, "--url", sidecar.url)


def metrics(sidecar: SidecarProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a real scrape, parsed by prometheus_client."""
    text = sidecar.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def after_ttl(sidecar: SidecarProcess, path: str = "/db/activity") -> None:
    """Until ``path`` answers from a catalog round that began after now (the cache is past)."""
    since = time.time()

    def fresh() -> bool:
        collected = sidecar.get(path).json().get("collected_at") or ""
        return bool(collected) and datetime.fromisoformat(collected.replace("Z", "+00:00")).timestamp() > since

    wait_for(fresh, 10, TTL / 2, f"a catalog round for {path} after the cache")


def lock_wait_seconds(pg: HotStandbyCluster, pid: int) -> float:
    """How long session ``pid`` has waited in its current state (for a lock, here)."""
    return idle_seconds(pg, pid)


def idle_seconds(pg: HotStandbyCluster, pid: int) -> float:
    """How long PostgreSQL says session ``pid`` has been in its current state."""
    query = f"SELECT extract(epoch FROM clock_timestamp() - state_change) FROM pg_stat_activity WHERE pid = {pid}"
    return float(pg.sql(pg.primary, query))


WORKER = "billing-worker-apikey=sk_live_0123456789"  # what an application_name can carry (issue 19)


def test_a_session_idle_in_transaction(viewer: SidecarProcess, pg: HotStandbyCluster) -> None:
    with faults.Session(pg, WORKER) as idle:
        idle.ask("BEGIN; SELECT txid_current();")
        wait_for(lambda: idle_seconds(pg, idle.pid) > 1.2, what="idle in transaction for over a second")
        after_ttl(viewer)
        body = get(viewer, "/db/activity")
        theirs = idle_seconds(pg, idle.pid)
        session = body["oldest_idle_in_transaction"]
        assert session == {"pid": idle.pid, "state": "idle in transaction", "seconds": session["seconds"]}
        assert 1.2 <= body["idle_in_transaction_max_seconds"] <= theirs + 0.1
        assert body["oldest_xact"]["pid"] == idle.pid  # its transaction is also the oldest one
        # Without the token: counts and durations only — no application names, users, addresses.
        assert body["identities"] is False and body["by_application"] is None
        text = json.dumps(body)
        assert "sk_live" not in text and "billing-worker" not in text and "fasterdb_admin" not in text
        assert "127.0.0.1" not in text and "txid_current" not in text  # never the query text
        # Counts against PostgreSQL's own.
        states = pg.sql(
            pg.primary,
            "SELECT s || '=' || count(*) FROM (SELECT coalesce(state, 'unknown') AS s FROM pg_stat_activity "
            "WHERE backend_type = 'client backend') a GROUP BY s ORDER BY s",
        ).splitlines()
        seen = {k: int(v) for k, v in (line.split("=") for line in states)}
        assert body["by_state"]["idle in transaction"] == seen["idle in transaction"] == 1
        assert body["connections"] == sum(body["by_state"].values())
        assert abs(body["connections"] - (sum(seen.values()) - 1)) <= 1  # psql's own sql() session is extra
        limits = pg.sql(
            pg.primary,
            "SELECT current_setting('max_connections') || ' ' || current_setting('superuser_reserved_connections')",
        )
        max_connections, reserved = (int(x) for x in limits.split())
        assert body["usable"] == max_connections - reserved and body["headroom"] == body["usable"] - body["connections"]

        # Identities with the admin token only; a wrong token is refused, not ignored.
        with_token = get(viewer, "/db/activity", headers={"Authorization": f"Bearer {TOKEN}"})
        named = with_token["oldest_idle_in_transaction"]
        assert named["user"] == "fasterdb_admin" and with_token["identities"] is True
        assert named["client_addr"] == "127.0.0.1" and named["application"] == WORKER
        assert WORKER in [a["application"] for a in with_token["by_application"]]
        assert viewer.get("/db/activity", headers={"Authorization": "Bearer wrong-token-0000000000"}).status_code == 401

        # The CLI: the verdict in all three outputs, names only with the token.
        warn = cli(viewer, "activity", "--warn-idle-in-tx", "1s", "--crit-idle-in-tx", "10m")
        assert warn.returncode == 1, warn.stdout + warn.stderr
        assert "idle in transaction" in warn.stdout and "sk_live" not in warn.stdout
        assert "shown with the admin token" in warn.stdout
        named_table = cli(viewer, "activity", "--warn-idle-in-tx", "1s", "--crit-idle-in-tx", "10m", "--token", TOKEN)
        assert named_table.returncode == 1 and "billing-worker" in named_table.stdout
        crit = cli(viewer, "activity", "--warn-idle-in-tx", "0.5", "--crit-idle-in-tx", "1", "-o", "nagios")
        assert crit.returncode == 2, crit.stdout + crit.stderr
        line = crit.stdout.strip()
        assert line.startswith("ACTIVITY CRITICAL - ") and len(line.splitlines()) == 1
        assert f"(pid {idle.pid})" in line and "'idle_in_transaction_seconds'=" in line
        named_line = cli(viewer, "activity", "--crit-idle-in-tx", "1", "-o", "nagios", "--token", TOKEN).stdout
        assert f"pid {idle.pid}, {WORKER}" in named_line
        document = json.loads(cli(viewer, "activity", "--crit-idle-in-tx", "1s", "-o", "json").stdout)
        assert document["check"] == "CRITICAL" and document["checks"]["idle_in_tx"]["verdict"] == "CRITICAL"

        samples = metrics(viewer)
        assert samples[("fasterdb_pg_idle_in_transaction_max_seconds", ())] >= 1.2
        assert samples[("fasterdb_pg_connections", (("state", "idle in transaction"),))] == 1
        assert samples[("fasterdb_pg_view_up", (("view", "activity"),))] == 1
    # Gone: the next round says so.
    after_ttl(viewer)
    assert get(viewer, "/db/activity")["oldest_idle_in_transaction"] is None
    assert cli(viewer, "activity", "--warn-idle-in-tx", "1s").returncode == 0


def test_a_lock_wait_and_its_blocker(viewer: SidecarProcess, pg: HotStandbyCluster) -> None:
    pg.sql(
        pg.primary,
        "CREATE TABLE IF NOT EXISTS public.lockme (id int PRIMARY KEY, n int); "
        "INSERT INTO public.lockme VALUES (1, 0) ON CONFLICT DO NOTHING",
    )
    # The waiter's session is opened first so that it is closed last: the holder's rollback frees
    # the lock, and the waiter's psql ends at once instead of running into close()'s 10 s kill.
    with faults.Session(pg, "report-job") as waiter, faults.row_locked(pg, "public.lockme", 1) as holder:
        waiter.send("UPDATE public.lockme SET n = n + 1 WHERE id = 1;")
        wait_for(
            lambda: (
                pg.sql(pg.primary, f"SELECT wait_event_type FROM pg_stat_activity WHERE pid = {waiter.pid}") == "Lock"
            ),
            what="the second session waits for the lock",
        )
        wait_for(lambda: lock_wait_seconds(pg, waiter.pid) >= 0.5, what="the lock waited for half a second")
        after_ttl(viewer)
        body = get(viewer, "/db/activity", headers={"Authorization": f"Bearer {TOKEN}"})
        theirs = pg.sql(pg.primary, f"SELECT array_to_string(pg_blocking_pids({waiter.pid}), ',')")
        assert [w["pid"] for w in body["lock_waiters"]] == [waiter.pid]
        waiting = body["lock_waiters"][0]
        assert waiting["blocked_by"] == [int(p) for p in theirs.split(",")] == [holder.pid]
        assert waiting["application"] == "report-job" and waiting["waiting_seconds"] >= 0.5
        assert body["blockers"] == [
            {
                "pid": holder.pid,
                "application": "fasterdb-test/locker",
                "state": "idle in transaction",
                "xact_seconds": body["blockers"][0]["xact_seconds"],
                "blocking": 1,
                "user": "fasterdb_admin",
                "client_addr": body["blockers"][0]["client_addr"],
            }
        ]
        anonymous = get(viewer, "/db/activity")  # the same, without names
        # (its catalog round may be a newer one: the durations may have grown)
        assert [set(b) for b in anonymous["blockers"]] == [{"pid", "state", "xact_seconds", "blocking"}]
        assert anonymous["blockers"][0]["pid"] == holder.pid and anonymous["blockers"][0]["blocking"] == 1
        assert [set(w) for w in anonymous["lock_waiters"]] == [{"pid", "waiting_seconds", "blocked_by"}]
        assert body["longest_lock_wait_seconds"] == waiting["waiting_seconds"]

        result = cli(viewer, "activity", "--warn-lock-wait", "0.2", "--crit-lock-wait", "1h", "-o", "nagios")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "1 waiting for a lock" in result.stdout and f"blocked by pid {holder.pid}" in result.stdout
        assert "'lock_waiters'=1;" in result.stdout
        table = cli(viewer, "activity", "--token", TOKEN)
        assert "lock waits" in table.stdout and "report-job" in table.stdout and str(holder.pid) in table.stdout
        anonymous_table = cli(viewer, "activity")
        assert "lock waits" in anonymous_table.stdout and "report-job" not in anonymous_table.stdout
        assert metrics(viewer)[("fasterdb_pg_lock_waiters", ())] == 1


def test_an_inactive_slot_with_wal_written_past_it(viewer: SidecarProcess, pg: HotStandbyCluster) -> None:
    pg.sql(pg.primary, "SELECT pg_create_physical_replication_slot('forgotten_standby', true)")
    try:
        faults.write_wal(pg, 3)
        after_ttl(viewer, "/db/slots")
        body = get(viewer, "/db/slots")
        theirs = int(
            pg.sql(
                pg.primary,
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) FROM pg_replication_slots "
                "WHERE slot_name = 'forgotten_standby'",
            )
        )
        slot = next(s for s in body["slots"] if s["name"] == "forgotten_standby")
        assert slot["type"] == "physical" and slot["active"] is False and slot["wal_status"] == "reserved"
        assert 3 * faults.MB <= slot["retained_bytes"] <= theirs
        replica_slot = next(s for s in body["slots"] if s["name"] != "forgotten_standby")
        assert replica_slot["active"] is True  # the streaming replica's own

        inactive = cli(viewer, "slots", "-o", "nagios")
        assert inactive.returncode == 1, inactive.stdout + inactive.stderr  # inactive: at least WARNING
        assert (
            inactive.stdout.startswith("SLOTS WARNING - ") and "forgotten_standby inactive retains" in inactive.stdout
        )
        assert "'forgotten_standby_retained'=" in inactive.stdout
        critical = cli(viewer, "slots", "--warn-retained", "512kB", "--crit-retained", "2MB", "-o", "json")
        assert critical.returncode == 2, critical.stdout + critical.stderr
        document = json.loads(critical.stdout)
        row = next(s for s in document["slots"] if s["name"] == "forgotten_standby")
        assert row["check"] == "CRITICAL" and "inactive" in row["why"] and document["crit_retained"] == "2097152"
        assert "forgotten_standby" in cli(viewer, "slots").stdout

        samples = metrics(viewer)
        assert samples[("fasterdb_pg_slot_active", (("slot", "forgotten_standby"),))] == 0
        assert samples[("fasterdb_pg_slot_retained_bytes", (("slot", "forgotten_standby"),))] >= 3 * faults.MB
    finally:
        pg.sql(pg.primary, "SELECT pg_drop_replication_slot('forgotten_standby')")
    after_ttl(viewer, "/db/slots")
    assert cli(viewer, "slots").returncode == 0


def test_wraparound_ages_are_postgresqls_own(viewer: SidecarProcess, pg: HotStandbyCluster) -> None:
    after_ttl(viewer, "/db/wraparound")
    body = get(viewer, "/db/wraparound")
    theirs = dict(
        line.split("=")
        for line in pg.sql(pg.primary, "SELECT datname || '=' || age(datfrozenxid) FROM pg_database").splitlines()
    )
    assert {d["name"] for d in body["databases"]} == set(theirs)
    for database in body["databases"]:
        assert 0 <= int(theirs[database["name"]]) - database["xid_age"] <= 5  # the same, give or take our own xacts
        assert database["xid_ratio"] == pytest.approx(database["xid_age"] / 2**31)
    assert body["autovacuum_freeze_max_age"] == int(pg.sql(pg.primary, "SHOW autovacuum_freeze_max_age"))
    ok = cli(viewer, "wraparound", "-o", "nagios")
    assert ok.returncode == 0 and ok.stdout.startswith("WRAPAROUND OK - ") and "_xid_ratio'=" in ok.stdout
    tiny = cli(viewer, "wraparound", "--warn", "0.000000001", "--crit", "0.5")
    assert tiny.returncode == 1, tiny.stdout + tiny.stderr
    samples = metrics(viewer)
    assert samples[("fasterdb_pg_xid_wraparound_ratio", (("database", "fasterdb"),))] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["activity", "--warn-idle-in-tx", "5x"],
        ["activity", "--warn-idle-in-tx", "10m", "--crit-idle-in-tx", "1m"],
        ["activity", "--warn-headroom", "1", "--crit-headroom", "5"],
        ["activity", "--warn-headroom", "-1"],
        ["slots", "--crit-retained", "10XB"],
        ["slots", "--warn-retained", "2GB", "--crit-retained", "1GB"],
        ["wraparound", "--warn", "0"],
        ["wraparound", "--crit", "1.5"],
        ["wraparound", "--warn", "0.8", "--crit", "0.5"],
        ["budget", "--pods", "0"],
        ["budget", "--deployment", "shop"],
    ],
)
def test_bad_thresholds_are_usage_errors(viewer: SidecarProcess, args: list[str]) -> None:
    result = cli(viewer, *args)
    assert result.returncode == 3 and "usage error" in result.stderr and len(result.stderr.splitlines()) == 1


def test_an_unreachable_database_is_critical_with_one_line(sidecar_env: dict[str, str], pg: HotStandbyCluster) -> None:
    env = dict(sidecar_env, FASTERDB_CATALOG_CACHE_TTL="0")
    with SidecarProcess(env) as sidecar:
        pg.stop_node(pg.primary)
        response = sidecar.get("/db/activity")
        assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
        result = run_cli("slots", "--url", sidecar.url, "-o", "nagios")
        assert result.returncode == 2 and result.stdout.startswith("SLOTS CRITICAL - ")
        samples = metrics(sidecar)
        assert samples[("fasterdb_pg_view_up", (("view", "slots"),))] == 0
        assert not [k for k in samples if k[0] == "fasterdb_pg_slot_active"]  # no stale figures


def test_many_askers_cost_one_catalog_round_per_ttl(viewer: SidecarProcess, pg: HotStandbyCluster) -> None:
    import asyncio

    pg.sql(pg.primary, "SELECT pg_stat_statements_reset()")

    async def burst() -> float:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=viewer.url, timeout=10) as client:
            for _ in range(5):
                paths = ["/db/activity", "/db/slots", "/db/wraparound", "/metrics", "/db/budget?pods=3"] * 8
                statuses = await asyncio.gather(*(client.get(p) for p in paths))
                assert {r.status_code for r in statuses} == {200}
                await asyncio.sleep(0.1)
        return time.monotonic() - started

    elapsed = asyncio.run(burst())
    calls = pg.sql(
        pg.primary,
        "SELECT string_agg(calls::text, ',' ORDER BY query) FROM pg_stat_statements s "
        "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'fasterdb_app' AND (query LIKE '%pg_stat_activity a%' "
        "OR query LIKE '%pg_replication_slots r%' OR query LIKE '%mxid_age(datminmxid)%')",
    )
    windows = int(elapsed / TTL) + 2
    counts = [int(c) for c in calls.split(",")]
    assert len(counts) == 3 and all(1 <= c <= windows for c in counts), (counts, elapsed)


def test_connections_up_to_the_limit_and_a_budget_that_overflows() -> None:
    with TempCluster(extra_conf={"max_connections": "20", "superuser_reserved_connections": "3"}) as small:
        env = {
            "FASTERDB_PRIMARY_DSN": small.dsn(),
            "FASTERDB_CATALOG_CACHE_TTL": "0",
            "FASTERDB_POOL_MAX_SIZE": "4",
            "FASTERDB_ADMIN_TOKEN": TOKEN,
        }
        with SidecarProcess(env) as sidecar:
            # Its monitor and its job worker connect on their own time: count once both hold theirs
            # (counted earlier, the slot left free below was taken by the second one).
            body = wait_for(
                lambda: (b := get(sidecar, "/db/activity"))["connections"] >= 2 and b,
                10,
                what="the sidecar's two connections (monitor, job worker)",
            )
            assert (body["max_connections"], body["superuser_reserved_connections"], body["usable"]) == (20, 3, 17)

            async def hold(n: int) -> list[asyncpg.Connection]:
                return [
                    await asyncpg.connect(small.dsn(), server_settings={"application_name": "greedy"}) for _ in range(n)
                ]

            import asyncio

            loop = asyncio.new_event_loop()
            held = loop.run_until_complete(hold(17 - body["connections"] - 1))  # leave one slot
            try:
                full = get(sidecar, "/db/activity", headers={"Authorization": f"Bearer {TOKEN}"})
                used = int(
                    small.sql(
                        small.primary, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    )
                )
                assert full["connections"] == used - 1  # minus psql's own, which is gone again
                assert full["headroom"] == 17 - full["connections"] == 1
                greedy = next(a for a in full["by_application"] if a["application"] == "greedy")
                assert greedy["connections"] == len(held)
                # The default thresholds (10 %, 5 % of usable: 2 and 1 free connections): WARNING.
                result = run_cli("activity", "--url", sidecar.url, "-o", "nagios")
                assert (
                    result.returncode == 1
                    and "headroom 1" in result.stdout
                    and "'headroom'=1;2:;1:;0;17" in result.stdout
                )
                result = run_cli(
                    "activity", "--url", sidecar.url, "--token", TOKEN, "--warn-headroom", "5", "--crit-headroom", "2"
                )
                assert result.returncode == 2 and "greedy" in result.stdout

                over = get(sidecar, "/db/budget?pods=4&surge=1")
                # (4 + 1) pods x (the sidecar's monitor and job-worker connections, no application
                # reporting) + the greedy connections (and nothing else); its pool max 4 is only borrowed.
                assert over["per_pod"] == over["sidecar_per_pod"] == 2 and over["app_pool_source"] == "none"
                assert over["fleet"] == 10 and over["others"] == len(held) and over["pool_max"] == 4
                assert over["required"] == 10 + len(held) and over["usable"] == 17 and over["status"] == "critical"
                assert over["recommended_pool_max"] == 0  # nothing fits beside the greedy connections
                budget = run_cli("budget", "--url", sidecar.url, "--pods", "4", "--surge", "1", "-o", "nagios")
                assert budget.returncode == 2 and budget.stdout.startswith("BUDGET CRITICAL - ")
                assert "nothing fits" in budget.stdout
            finally:
                for conn in held:
                    loop.run_until_complete(conn.close())
                loop.close()
            fits = get(sidecar, "/db/budget?pods=2")
            assert fits["others"] == 0 and fits["required"] == 4 and fits["status"] == "ok"
            # 80 % of 17 = 13.6 -> 6 per pod -> the application's pools at most 4 beside the sidecar's 2.
            assert fits["recommended_pool_max"] == 4
            warn = run_cli("budget", "--url", sidecar.url, "--pods", "3", "--app-pool-max", "3")  # 15 of 17
            assert warn.returncode == 1 and "set the application's pool max to at most 2 per pod" in warn.stdout
            assert "pool max by workload" in warn.stdout
            document = json.loads(
                run_cli("budget", "--url", sidecar.url, "--pods", "2", "--app-pool-max", "5", "-o", "json").stdout
            )
            # 2 x (2 + 5) = 14 of 17: over 80 %; the application's pools should be at most 4 per pod.
            assert document["per_pod"] == 7 and document["check"] == "WARNING" and document["recommended_pool_max"] == 4
            assert document["app_pool_source"] == "given"
