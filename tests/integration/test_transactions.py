"""The request-scoped database helper, against the real primary: commit, rollback, release, deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from devtools.hot_standby import HotStandbyCluster
from fasterdb.errors import DatabaseError, DatabaseUnavailable
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb.pools.transactions import transaction

T = TypeVar("T")


def run_with_pool(pg: HotStandbyCluster, body: Callable[[ManagedPool], Awaitable[T]], **config: float) -> T:
    async def main() -> T:
        pool = ManagedPool("primary", "primary", pg.dsn(), PoolConfig(**config))  # type: ignore[arg-type]
        await pool.open()
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


@pytest.fixture()
def table(pg: HotStandbyCluster) -> str:
    pg.sql(pg.primary, "DROP TABLE IF EXISTS public.tx_probe")
    pg.sql(pg.primary, "CREATE TABLE public.tx_probe (id int primary key, v text)")
    pg.sql(pg.primary, "GRANT ALL ON public.tx_probe TO fasterdb_app")
    return "public.tx_probe"


def _rows(pg: HotStandbyCluster) -> str:
    return pg.sql(pg.primary, "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM public.tx_probe")


def test_commit_on_success(pg: HotStandbyCluster, table: str) -> None:
    async def body(pool: ManagedPool) -> int:
        async with transaction(pool) as conn:
            await conn.execute("INSERT INTO public.tx_probe VALUES (1, 'a'), (2, 'b')")
        return pool.snapshot().idle

    idle = run_with_pool(pg, body, min_size=1, max_size=2)
    assert _rows(pg) == "1,2"
    assert idle >= 1  # released back to the pool


def test_rollback_on_error_and_release(pg: HotStandbyCluster, table: str) -> None:
    class Boom(Exception):
        pass

    async def body(pool: ManagedPool) -> tuple[int, int]:
        with pytest.raises(Boom):
            async with transaction(pool) as conn:
                await conn.execute("INSERT INTO public.tx_probe VALUES (10, 'x')")
                raise Boom
        # A driver error inside the block also rolls back, and leaves as our own error.
        with pytest.raises(DatabaseError):
            async with transaction(pool) as conn:
                await conn.execute("INSERT INTO public.tx_probe VALUES (11, 'y')")
                await conn.execute("INSERT INTO public.tx_probe VALUES (11, 'dup')")
        stats = pool.snapshot()
        return stats.size, stats.idle

    size, idle = run_with_pool(pg, body, min_size=1, max_size=1)
    assert _rows(pg) == ""
    assert size == idle == 1  # the single connection came back both times


def test_cancelled_request_releases_its_connection(pg: HotStandbyCluster, table: str) -> None:
    async def body(pool: ManagedPool) -> int:
        async def slow() -> None:
            async with transaction(pool) as conn:
                await conn.execute("INSERT INTO public.tx_probe VALUES (20, 'z')")
                await conn.execute("SELECT pg_sleep(10)")

        task = asyncio.create_task(slow())
        # Cancel mid-transaction: once the row is written and pg_sleep runs (observed, never slept for).
        sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'"
        async with asyncio.timeout(10):
            while await asyncio.to_thread(pg.sql, pg.primary, sleeping) != "1":
                pass  # each look is one psql round trip: no busy loop
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The only connection must be usable again right away.
        async with transaction(pool, timeout=2) as conn:
            return int(await conn.fetchval("SELECT 1"))

    assert run_with_pool(pg, body, min_size=1, max_size=1) == 1
    assert _rows(pg) == ""


def test_acquire_has_a_deadline(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[str, float]:
        async with pool.acquire():
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(DatabaseUnavailable) as info:
                async with transaction(pool, timeout=0.2):
                    pass
            return info.value.category, loop.time() - started

    category, took = run_with_pool(pg, body, min_size=1, max_size=1)
    assert category == "timeout"
    assert 0.15 <= took < 1.0


def test_database_down_is_unavailable_not_a_crash(pg: HotStandbyCluster) -> None:
    pg.stop_node(pg.primary)

    async def body(pool: ManagedPool) -> str:
        with pytest.raises(DatabaseUnavailable) as info:
            async with transaction(pool, timeout=1):
                pass
        return info.value.category

    assert run_with_pool(pg, body, min_size=1, max_size=2) == "connection refused"


def test_pool_sets_application_name_and_statement_timeout(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[str, str]:
        async with transaction(pool) as conn:
            return await conn.fetchval("SHOW application_name"), await conn.fetchval("SHOW statement_timeout")

    name, timeout = run_with_pool(pg, body, command_timeout=7)
    assert name == "fasterdb-sidecar/primary"
    assert timeout == "7s"
