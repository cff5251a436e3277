"""One view of the pod's connections: the application's pools in its sidecar, and the sidecar's own cost.

A real application process (the example app, the kit) beside a real sidecar: its reports appear
in /pools, /metrics and the CLI within an interval and vanish after it stops; only loopback may
report; /db/budget counts the reported pools; a lock held inside an application route is named
by that route in /db/activity; and the sidecar's own footprint stays at 2 connections on the
primary and 1 on each replica under probe, scrape and view load.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from FasterAPI import Faster, Response
from prometheus_client.parser import text_string_to_metric_families

from devtools.hot_standby import HotStandbyCluster
from fasterdb import Database
from fasterdb.settings import KitSettings
from fasterdb_sidecar.app import create_app
from fasterdb_sidecar.settings import load_settings
from tests.harness import InProcessApp, SidecarProcess, example_app, run_cli, wait_for

TOKEN = "app-pools-token-0123456789"


def app_pools(sidecar: SidecarProcess) -> list[dict[str, object]]:
    return [p for p in sidecar.get("/pools").json()["pools"] if p.get("source") == "app"]


def test_reports_appear_within_an_interval_and_vanish_after_the_app_stops(
    sidecar: SidecarProcess, sidecar_env: dict[str, str]
) -> None:
    with example_app(sidecar_env, sidecar=sidecar, name="shop") as app:
        started = time.monotonic()
        pools = wait_for(lambda: app_pools(sidecar), 10, 0.05, "the application's pools in /pools")
        assert time.monotonic() - started < 10
        assert {(p["app"], p["name"], p["role"]) for p in pools} == {
            ("shop", "primary", "primary"),
            ("shop", "replica-1", "replica"),
        }
        assert all(str(p["instance"]).endswith(f":{app.proc.pid}") for p in pools)  # type: ignore[union-attr]
        wait_for(lambda: httpx.post(app.url + "/items", json={"name": "x"}).status_code == 201, 20, what="writes")
        item = httpx.post(app.url + "/items", json={"name": "y"}).json()["id"]
        for _ in range(5):
            assert app.get(f"/items/{item}").status_code == 200

        def metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            text = sidecar.get("/metrics").text
            return {
                (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if v))): s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
            }

        process = f"{socket.gethostname()}:{app.proc.pid}"  # type: ignore[union-attr]
        key = (
            "fasterdb_pool_max_size",
            (("app", "shop"), ("pool", "primary"), ("process", process), ("source", "app")),
        )
        wait_for(lambda: key in metrics(), 10, what="the application's pools in /metrics")
        # The kit reports once per interval: wait for the report that counts all five reads (the
        # first one seen may have been taken before the last of them).
        wait_for(
            lambda: sum(v for (name, labels), v in metrics().items() if name == "fasterdb_app_reads_total") >= 5,
            10,
            what="the application's five reads in /metrics",
        )
        table = run_cli("pool-stats", "--url", sidecar.url)
        assert table.returncode == 0 and f"shop@{app.proc.pid}/primary" in table.stdout  # type: ignore[union-attr]
    stopped = time.monotonic()
    wait_for(lambda: not app_pools(sidecar), 10, 0.05, "the reports expired")
    assert time.monotonic() - stopped < 10  # three intervals of 0.1 s, and the scheduling around them


def test_only_the_pods_own_processes_can_report(sidecar_env: dict[str, str]) -> None:
    report = {"app": "x", "instance": "h:1", "interval": 1, "pools": [], "counters": {}}

    async def post(client_address: str) -> int:
        env_app = _sidecar_app(sidecar_env)
        transport = httpx.ASGITransport(app=env_app, client=(client_address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            return (await client.post("/pools/report", json=report)).status_code

    assert asyncio.run(post("10.1.2.3")) == 403  # through the Service: another pod's address
    assert asyncio.run(post("192.0.2.7")) == 403
    assert asyncio.run(post("127.0.0.1")) == 202
    assert asyncio.run(post("::1")) == 202
    assert asyncio.run(post("::ffff:127.0.0.1")) == 202


def _sidecar_app(env: dict[str, str]) -> Faster:
    import os

    saved = dict(os.environ)
    try:
        os.environ.update(env)
        settings = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return create_app(settings)


def test_the_budget_counts_the_reported_pools(sidecar: SidecarProcess, sidecar_env: dict[str, str]) -> None:
    env = {**sidecar_env, "FASTERDB_POOL_MAX_SIZE": "7"}
    with example_app(env, sidecar=sidecar, name="budgeted"):
        wait_for(lambda: app_pools(sidecar), 10, what="reports")
        body = sidecar.get("/db/budget?pods=3").json()
        assert body["app_pool_source"] == "reported" and body["app_pool_max"] == 7
        assert body["per_pod"] == body["sidecar_per_pod"] + 7
        given = sidecar.get("/db/budget?pods=3&app_pool_max=2").json()
        assert given["app_pool_source"] == "given" and given["app_pool_max"] == 2


@pytest.fixture()
def lock_app(pg: HotStandbyCluster) -> Iterator[tuple[InProcessApp, Database]]:
    pg.sql(
        pg.primary,
        "CREATE TABLE IF NOT EXISTS public.kit_locks (id int PRIMARY KEY); GRANT ALL ON public.kit_locks TO PUBLIC",
    )
    pg.sql(pg.primary, "INSERT INTO public.kit_locks VALUES (1) ON CONFLICT DO NOTHING")
    env = {**pg.sidecar_env(), "FASTERDB_SIDECAR_URL": "", "FASTERDB_APP_NAME": "lockshop"}
    db = Database(KitSettings.from_env(env))
    app = Faster(openapi_url=None, docs_url=None, redoc_url=None)
    db.install(app)

    @app.post("/lock/{row}")
    async def lock(row: str) -> Response:
        async with db.write() as conn:
            await conn.execute("SELECT id FROM public.kit_locks WHERE id = $1 FOR UPDATE", int(row))
            await conn.execute("SELECT pg_sleep(3)")
        return Response(b"{}", media_type="application/json")

    with InProcessApp(app) as served:
        yield served, db


def test_a_lock_held_in_an_application_route_is_named_by_that_route(
    lock_app: tuple[InProcessApp, Database], sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    served, _ = lock_app
    with SidecarProcess({**sidecar_env, "FASTERDB_ADMIN_TOKEN": TOKEN, "FASTERDB_CATALOG_CACHE_TTL": "0"}) as sidecar:
        holder = threading.Thread(target=httpx.post, args=(served.url + "/lock/1",), kwargs={"timeout": 20})
        holder.start()
        try:
            wait_for(
                lambda: (
                    pg.sql(
                        pg.primary,
                        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE c.relname = 'kit_locks' AND l.mode = 'RowShareLock'",
                    )
                    != "0"
                ),
                10,
                what="the route holding its lock",
            )
            waiter = threading.Thread(
                target=pg.sql, args=(pg.primary, "SELECT id FROM public.kit_locks WHERE id = 1 FOR UPDATE"), daemon=True
            )
            waiter.start()
            headers = {"Authorization": f"Bearer {TOKEN}"}

            def blocker() -> dict[str, object] | None:
                blockers = sidecar.get("/db/activity", headers=headers).json()["blockers"]
                return blockers[0] if blockers else None

            found = wait_for(blocker, 10, what="the blocker in /db/activity")
            assert found["application"] == f"lockshop@{socket.gethostname()} POST /lock/{{row}}"[:63]
        finally:
            holder.join(20)


def test_the_sidecar_costs_two_connections_on_the_primary_and_one_per_replica(
    sidecar_env: dict[str, str], pg: HotStandbyCluster
) -> None:
    env = {k: v for k, v in sidecar_env.items() if k not in ("FASTERDB_POOL_MIN_SIZE",)}
    env["FASTERDB_MONITOR_INTERVAL"] = "0.2"
    with SidecarProcess(env) as sidecar:
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=sidecar.url, timeout=10) as client:
                for _ in range(2000):  # bounded
                    if stop.is_set():
                        return
                    for path in ("/health/db", "/health/replicas", "/metrics", "/db/activity", "/pools", "/db/slots"):
                        client.get(path)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        peak = {node.name: 0 for node in pg.nodes}
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for node in pg.nodes:
                    count = int(
                        pg.sql(
                            node,
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'fasterdb-sidecar/%' "
                            "AND client_port = ANY(string_to_array(:'ports', ',')::int[])",
                            params={"ports": ",".join(map(str, sidecar.client_ports())) or "0"},
                        )
                    )
                    peak[node.name] = max(peak[node.name], count)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    primary, *replicas = pg.nodes
    assert 1 <= peak[primary.name] <= 2, peak  # the monitor connection, and the job worker's
    assert all(peak[r.name] == 1 for r in replicas), peak  # the monitor connection only
