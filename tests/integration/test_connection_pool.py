"""The kit's own connection pool (fasterdb.pools.connections), against the real primary: the session
reset, the released-connection guard, hand-offs to waiting acquires (also when they are cut off),
freed slots, the inactivity sweep, expiry and closing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest

from devtools.hot_standby import HotStandbyCluster
from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.managed import ManagedPool, PoolConfig

T = TypeVar("T")


def run_with_pool(pg: HotStandbyCluster, body: Callable[[ManagedPool], Awaitable[T]], **config: object) -> T:
    async def main() -> T:
        pool = ManagedPool("primary", "primary", pg.dsn(), PoolConfig(**config))  # type: ignore[arg-type]
        await pool.open()
        await pool.ensure_created(10)
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll the pool's own state from inside its loop (bounded)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


def test_the_session_is_reset_on_release_when_asked(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[str, str, bool]:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("SET work_mem = '1234kB'")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid  # the same session, reset
            work_mem = await conn.fetchval("SHOW work_mem")
            await conn.execute("BEGIN")
        async with pool.acquire() as conn:
            return work_mem, await conn.fetchval("SHOW work_mem"), conn.is_in_transaction()

    work_mem, again, in_transaction = run_with_pool(pg, body, min_size=1, max_size=1, reset_session=True)
    assert work_mem != "1234kB" and again == work_mem
    assert not in_transaction


def test_without_the_reset_only_an_open_transaction_is_rolled_back(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[str, bool, int]:
        async with pool.acquire() as conn:
            await conn.execute("SET work_mem = '1234kB'")
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE never_committed (id int)")
        async with pool.acquire() as conn:
            gone = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname = 'never_committed'")
            return await conn.fetchval("SHOW work_mem"), conn.is_in_transaction(), gone

    work_mem, in_transaction, gone = run_with_pool(pg, body, min_size=1, max_size=1, reset_session=False)
    assert work_mem == "1234kB"  # the sidecar's pools keep the session: nothing of theirs needs a reset
    assert not in_transaction and gone == 0


def test_a_connection_kept_past_its_block_is_refused(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> str:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        with pytest.raises(asyncpg.InterfaceError) as refused:
            await conn.fetchval("SELECT 1")
        with pytest.raises(asyncpg.InterfaceError):
            _ = conn.get_server_pid()
        return str(refused.value)

    assert "released back to the pool" in run_with_pool(pg, body, min_size=1, max_size=1)


def test_a_waiter_cut_off_as_it_is_handed_a_connection_passes_it_on(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[int, int, bool]:
        connections = pool.connections
        assert connections is not None
        got = []

        async def waiter() -> None:
            async with pool.acquire(timeout=10) as conn:
                got.append(conn)

        async with pool.acquire():
            task = asyncio.create_task(waiter())
            await until(lambda: pool.stats.waiting == 1, "the second acquire waits")
        # The release handed the connection to the waiter's future; cut it off before it runs.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with pool.acquire(timeout=2) as conn:  # the connection was passed on, not lost
            assert await conn.fetchval("SELECT 1") == 1
        return connections.size, len(connections.idle), bool(got)

    size, idle, got = run_with_pool(pg, body, min_size=1, max_size=1, reset_session=False)
    assert (size, idle, got) == (1, 1, False)


def test_a_lost_connection_frees_its_slot_for_a_waiting_acquire(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[int, int]:
        async def waiter() -> int:
            async with pool.acquire(timeout=10) as conn:
                return int(await conn.fetchval("SELECT pg_backend_pid()"))

        async with pool.acquire() as conn:
            first = int(await conn.fetchval("SELECT pg_backend_pid()"))
            task = asyncio.create_task(waiter())
            await until(lambda: pool.stats.waiting == 1, "the second acquire waits")
            conn.terminate()
        return first, await asyncio.wait_for(task, 10)

    first, second = run_with_pool(pg, body, min_size=1, max_size=1)
    assert second != first  # a new session in the freed slot


def test_idle_connections_beyond_the_minimum_are_closed_after_the_inactive_lifetime(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[int, int]:
        held = asyncio.Event()
        entered = []

        async def hold() -> None:
            async with pool.acquire(timeout=10):
                entered.append(1)
                await held.wait()

        tasks = [asyncio.create_task(hold()) for _ in range(3)]
        await until(lambda: len(entered) == 3, "three connections in use")
        held.set()
        await asyncio.gather(*tasks)
        opened = pool.snapshot().size
        await until(lambda: pool.snapshot().size == 1, "the pool back at its minimum", timeout=15)
        return opened, pool.snapshot().idle

    opened, idle = run_with_pool(pg, body, min_size=1, max_size=3, max_inactive_connection_lifetime=0.2)
    assert (opened, idle) == (3, 1)


def test_expire_replaces_idle_connections_now_and_those_in_use_on_release(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[set[int], set[int]]:
        async def pid() -> int:
            async with pool.acquire(timeout=10) as conn:
                return int(await conn.fetchval("SELECT pg_backend_pid()"))

        before = {await pid()}
        async with pool.acquire() as conn:
            before.add(await conn.fetchval("SELECT pg_backend_pid()"))
            await pool.expire()
            assert pool.snapshot().idle == 0
        after = {await pid()}
        return before, after

    before, after = run_with_pool(pg, body, min_size=2, max_size=2)
    assert before and not before & after


def test_close_refuses_waiters_and_waits_for_connections_in_use(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[str, bool]:
        release = asyncio.Event()

        async def hold() -> None:
            async with pool.acquire(timeout=10) as conn:
                await release.wait()
                await conn.fetchval("SELECT 1")  # still usable while the pool closes

        async def wait() -> str:
            try:
                async with pool.acquire(timeout=10):
                    return "acquired"
            except DatabaseUnavailable as exc:
                return exc.category

        holder = asyncio.create_task(hold())
        await until(lambda: pool.held == 1, "the connection in use")
        waiter = asyncio.create_task(wait())
        await until(lambda: pool.stats.waiting == 1, "an acquire waits")
        closing = asyncio.create_task(pool.close())
        refused = await asyncio.wait_for(waiter, 5)
        await asyncio.sleep(0)
        still_open = not closing.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, closing), 10)
        return refused, still_open

    refused, still_open = run_with_pool(pg, body, min_size=1, max_size=1)
    assert refused == "pool closed"
    assert still_open  # close() waited for the connection in use
