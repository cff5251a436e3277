"""The kit on the real primary and replica, inside an application served by uvicorn in this process.

Connections come back on every path (exceptions, cancellations, clients that go away, deadlines);
a deadline is a JSON 503 with Retry-After and no driver text; serialization failures are retried;
a COMMIT whose answer is lost is "outcome unknown", never retried blindly; a read-only primary's
connections are discarded; transactions name their route in pg_stat_activity.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest
from FasterAPI import Faster, Request, Response

from devtools.hot_standby import HotStandbyCluster
from fasterdb import Database, OutcomeUnknown, served_by
from fasterdb.errors import DatabaseUnavailable
from fasterdb.settings import KitSettings
from tests import faults
from tests.harness import InProcessApp, wait_for


def kit_settings(pg: HotStandbyCluster, **overrides: str) -> KitSettings:
    env = {
        **pg.sidecar_env(),
        "FASTERDB_SIDECAR_URL": "",
        "FASTERDB_APP_NAME": "kittest",
        "FASTERDB_READ_AFTER_KEY": "kit-test-key-0123456789",
        "FASTERDB_POOL_MAX_SIZE": "3",
        "FASTERDB_ACQUIRE_TIMEOUT": "0.5",
        **overrides,
    }
    return KitSettings.from_env(env)


class Boom(Exception):
    """An application error inside a block."""


def build(db: Database) -> Faster:
    """An application with routes that fail in every way a request can."""
    app = Faster(openapi_url=None, docs_url=None, redoc_url=None)
    db.install(app)

    @app.post("/fail/{how}")
    async def fail(how: str) -> Response:
        if how == "write":
            async with db.write() as conn:
                await conn.execute("INSERT INTO public.kit_probe VALUES (1)")
                raise Boom("application bug")
        if how == "read":
            async with db.read() as conn:
                await conn.fetchval("SELECT 1/0")
        if how == "sleep":
            async with db.read() as conn:
                await conn.execute("SELECT pg_sleep(30)")
        return Response(b"{}", media_type="application/json")

    @app.get("/who")
    async def who() -> Response:
        async with db.read() as conn:
            await conn.fetchval("SELECT 1")
        return Response(f'{{"served_by": "{served_by()}"}}'.encode(), media_type="application/json")

    @app.post("/hold/{seconds}")
    async def hold(seconds: str) -> Response:
        async with db.write() as conn:
            await conn.execute("SELECT pg_sleep($1)", float(seconds))
        return Response(b"{}", media_type="application/json")

    async def boom(request: Request, exc: Boom) -> Response:
        return Response(b'{"error": {"code": "boom", "message": "boom"}}', status_code=500)

    app.add_exception_handler(Boom, boom)
    return app


@pytest.fixture(scope="module")
def served(pg: HotStandbyCluster) -> Iterator[tuple[InProcessApp, Database]]:
    pg.sql(pg.primary, "CREATE TABLE IF NOT EXISTS public.kit_probe (id int); GRANT ALL ON public.kit_probe TO PUBLIC")
    db = Database(kit_settings(pg))
    with InProcessApp(build(db)) as app:
        wait_for(lambda: app.call(lambda: _ready(db)), 20, what="kit pools ready")
        yield app, db


async def _ready(db: Database) -> bool:
    return all(p.ready_for_acquire for p in db.pools())


def _idle(app: InProcessApp, db: Database) -> bool:
    async def check() -> bool:
        return all(p.held == 0 and p.snapshot().in_use == 0 for p in db.pools())

    return app.call(check)


def test_connections_come_back_after_a_thousand_failing_requests(served: tuple[InProcessApp, Database]) -> None:
    app, db = served
    codes: dict[int, int] = {}
    with httpx.Client(base_url=app.url, timeout=10) as client:
        for i in range(1000):
            status = client.post(f"/fail/{'write' if i % 2 else 'read'}").status_code
            codes[status] = codes.get(status, 0) + 1
    assert codes == {500: 1000}  # the application's own error, and a division by zero: never a hang
    assert _idle(app, db)
    assert all(p.snapshot().size <= p.max_size for p in db.pools())


def test_a_client_that_goes_away_and_a_cancelled_task_give_their_connections_back(
    served: tuple[InProcessApp, Database], pg: HotStandbyCluster
) -> None:
    app, db = served
    for _ in range(2):  # of a pool of 3: one stays for the cancelled task below
        with socket.create_connection(("127.0.0.1", app.port)) as raw:
            raw.sendall(b"POST /fail/sleep HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    wait_for(lambda: app.call(lambda: _busy(db)), 10, what="the abandoned requests hold connections")

    async def cancel_one() -> bool:
        async def slow() -> None:
            async with db.write() as conn:
                await conn.execute("SELECT pg_sleep(30)")

        held = db.primary.held
        task = asyncio.create_task(slow())
        async with asyncio.timeout(10):
            while db.primary.held == held:  # it holds its connection: cancel it mid-transaction
                await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return task.cancelled()

    assert app.call(cancel_one)
    # The abandoned requests end with their statement; the pool never leaks them.
    faults.terminate_backends(pg, pg.primary, "kittest@%")
    wait_for(lambda: _idle(app, db), 15, what="every connection back in its pool")


async def _busy(db: Database) -> bool:
    return sum(p.held for p in db.pools()) >= 2


def test_a_deadline_is_a_json_503_with_retry_after_and_no_driver_text(
    served: tuple[InProcessApp, Database],
) -> None:
    app, db = served
    with httpx.Client(base_url=app.url, timeout=20) as client:
        holders = [app.submit(lambda: _hold_primary(db, 3.0)) for _ in range(3)]  # the whole pool (3)
        wait_for(lambda: db.primary.held == 3, 10, what="the pool held")
        answer = client.post("/hold/0")
        for h in holders:
            h.result(20)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json() == {
        "error": {"code": "database_unavailable", "message": "the primary database is unavailable: timeout"}
    }
    assert _idle(app, db)


async def _hold_primary(db: Database, seconds: float) -> None:
    async with db.primary.acquire(5) as conn:
        await conn.execute("SELECT pg_sleep($1)", seconds)


def test_reads_name_the_server_that_answered(served: tuple[InProcessApp, Database]) -> None:
    app, db = served
    # No sidecar here: without a view, reads go to the primary (counted as "unknown").
    answer = app.get("/who")
    assert answer.json() == {"served_by": "primary"} and answer.headers["fasterdb-served-by"] == "primary"
    assert db.router.counts["route:unknown"] >= 1


def test_serialization_failures_are_retried_until_every_increment_lands(pg: HotStandbyCluster) -> None:
    pg.sql(pg.primary, "CREATE TABLE IF NOT EXISTS public.kit_counter (id int PRIMARY KEY, n int)")
    pg.sql(pg.primary, "INSERT INTO public.kit_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0")
    pg.sql(pg.primary, "GRANT ALL ON public.kit_counter TO PUBLIC")

    async def scenario() -> tuple[int, int]:
        db = Database(kit_settings(pg, FASTERDB_POOL_MAX_SIZE="8"))
        await db.open()
        conflicts = 0

        async def increment(conn: asyncpg.Connection) -> None:
            nonlocal conflicts
            n = await conn.fetchval("SELECT n FROM public.kit_counter WHERE id = 1")
            await asyncio.sleep(0.01)  # widen the window: concurrent serializable updates conflict
            try:
                await conn.execute("UPDATE public.kit_counter SET n = $1 WHERE id = 1", n + 1)
            except asyncpg.SerializationError:
                conflicts += 1
                raise

        try:
            await asyncio.gather(*(db.run(increment, isolation="serializable", budget=60) for _ in range(20)))
        finally:
            await db.close()
        return conflicts, int(pg.sql(pg.primary, "SELECT n FROM public.kit_counter WHERE id = 1"))

    conflicts, total = asyncio.run(scenario())
    assert conflicts > 0  # real serialization failures happened ...
    assert total == 20  # ... and every increment landed exactly once


def test_a_commit_whose_answer_is_lost_is_outcome_unknown_not_retried(pg: HotStandbyCluster) -> None:
    pg.sql(pg.primary, "CREATE TABLE IF NOT EXISTS public.kit_once (id serial, x int)")
    pg.sql(pg.primary, "GRANT ALL ON public.kit_once TO PUBLIC; GRANT ALL ON SEQUENCE public.kit_once_id_seq TO PUBLIC")
    before = int(pg.sql(pg.primary, "SELECT count(*) FROM public.kit_once"))

    async def scenario() -> BaseException | None:
        db = Database(kit_settings(pg, FASTERDB_COMMAND_TIMEOUT="1"))
        await db.open()
        attempts = 0

        async def insert_then_freeze(conn: asyncpg.Connection) -> None:
            nonlocal attempts
            attempts += 1
            await conn.execute("INSERT INTO public.kit_once (x) VALUES (1)")
            # The server freezes right before COMMIT: its answer never comes (command_timeout 1 s).
            stopped.append(faults.freeze(pg.primary))

        stopped: list[Any] = []
        try:
            await db.run(insert_then_freeze, budget=30)
        except OutcomeUnknown as exc:
            return exc if attempts == 1 else AssertionError(f"retried {attempts} times")
        finally:
            for thaw in stopped:
                thaw()
            await db.close()
        return None

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, OutcomeUnknown), outcome
    assert outcome.status == 503 and outcome.code == "outcome_unknown"
    # Nothing was retried: at most the one row (the server decides whether it committed).
    assert int(pg.sql(pg.primary, "SELECT count(*) FROM public.kit_once")) - before <= 1


def test_a_read_only_primary_discards_its_connections_and_new_writes_wait_for_a_writable_one(
    pg: HotStandbyCluster,
) -> None:
    async def write(db: Database) -> tuple[str, int]:
        try:
            async with db.write() as conn:
                await conn.execute("INSERT INTO public.kit_probe VALUES (2)")
                return "", int(await conn.fetchval("SELECT pg_backend_pid()"))
        except DatabaseUnavailable as exc:
            return exc.category, 0

    async def scenario() -> list[tuple[str, int]]:
        db = Database(kit_settings(pg, FASTERDB_WRITE_HOLD_SECONDS="0.5"))
        await db.open()
        try:
            outcomes = [await write(db)]  # a pooled connection to the primary
            pg.sql(pg.primary, "ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf()")
            # pg_reload_conf() only signals the postmaster: once a new session sees the setting, it has
            # reloaded and signalled every backend, the pooled one too (else, on a loaded machine, the
            # next write could run before the reload, on a primary still writable).
            wait_for(lambda: pg.sql(pg.primary, "SHOW default_transaction_read_only") == "on", 10, what="the reload")
            try:
                outcomes.append(await write(db))  # on the open connection: 25006, discarded
                outcomes.append(await write(db))  # a new one finds no writable host: held, then 503
            finally:
                pg.sql(pg.primary, "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()")
            outcomes.append(await write(db))
            outcomes.append((str(db.counts["write_holds"]), 0))
            return outcomes
        finally:
            await db.close()

    (_, before), (first, _), (second, _), (_, after), (holds, _) = asyncio.run(scenario())
    assert first == second == "not primary"
    assert int(holds) >= 1  # the second write waited for a writable primary before giving up
    assert before and after and before != after  # the read-only server's connection was not reused


def test_transactions_name_their_route_in_pg_stat_activity(
    served: tuple[InProcessApp, Database], pg: HotStandbyCluster
) -> None:
    app, db = served
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(httpx.post, app.url + "/hold/2", timeout=20)
        label = _label(pg)
        assert future.result(20).status_code == 200
    assert label == f"kittest@{socket.gethostname()} POST /hold/{{seconds}}"[:63]


def _label(pg: HotStandbyCluster) -> str:
    def named() -> str:
        return pg.sql(
            pg.primary,
            "SELECT application_name FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%' "
            "AND application_name LIKE 'kittest@%'",
        )

    return wait_for(named, 10, what="the holding transaction in pg_stat_activity")
