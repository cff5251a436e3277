"""The request-scoped database helper, against the real primary: commit, rollback, release, deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from devtools.hot_standby import HotStandbyCluster
from fasterdb.errors import DatabaseError, DatabaseUnavailable, OutcomeUnknown
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb.pools.transactions import run_transaction, statement, transaction
from tests import faults
from tests.harness import wait_for

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
    async def body(pool: ManagedPool) -> tuple[str, str, str]:
        async with transaction(pool) as conn:
            return (
                await conn.fetchval("SHOW application_name"),
                await conn.fetchval("SHOW statement_timeout"),
                await conn.fetchval("SHOW client_connection_check_interval"),
            )

    name, timeout, check = run_with_pool(pg, body, command_timeout=7)
    assert name == "fasterdb-sidecar/primary"
    assert timeout == "7s"
    assert check == "100ms"  # a statement whose client has gone is stopped by the server


def test_one_statement_commits_on_its_own_and_a_refused_one_changes_nothing(pg: HotStandbyCluster, table: str) -> None:
    async def body(pool: ManagedPool) -> int:
        async with statement(pool) as conn:
            await conn.execute("INSERT INTO public.tx_probe VALUES (30, 'a')")
        with pytest.raises(DatabaseError):  # the server answered: its implicit transaction rolled back
            async with statement(pool) as conn:
                await conn.execute("INSERT INTO public.tx_probe VALUES (31, 'b'), (30, 'dup')")
        return pool.snapshot().idle

    assert run_with_pool(pg, body, min_size=1, max_size=1) == 1  # released both times
    assert _rows(pg) == "30"


def test_one_statement_cut_off_by_a_freeze_has_an_unknown_outcome(pg: HotStandbyCluster, table: str) -> None:
    """The documented price of one round trip: the statement reached the server before it froze,
    so it runs when the server resumes. The caller is told the outcome is unknown, never "failed"."""

    async def insert(pool: ManagedPool, key: int, idempotent: bool) -> None:
        await run_transaction(
            pool,
            lambda c: c.execute(f"INSERT INTO public.tx_probe VALUES ({key}, 'f')"),
            budget=1.0,
            idempotent=idempotent,
            one_statement=True,
        )

    async def body(pool: ManagedPool) -> tuple[BaseException, BaseException]:
        async with pool.acquire() as a, pool.acquire() as b:  # both connections open before the freeze
            await a.execute("SELECT 1")
            await b.execute("SELECT 1")
        with faults.frozen(pg.primary):
            plain, keyed = await asyncio.gather(insert(pool, 40, False), insert(pool, 41, True), return_exceptions=True)
        return plain, keyed  # type: ignore[return-value]

    plain, keyed = run_with_pool(pg, body, min_size=2, max_size=2)
    assert isinstance(plain, OutcomeUnknown), plain
    assert isinstance(keyed, DatabaseUnavailable) and "may have been applied" in keyed.message, keyed
    wait_for(lambda: _rows(pg) == "40,41", 10, what="both statements applied after the thaw")
