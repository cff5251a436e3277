"""The kit's own connection pool (fasterdb.pools.connections), against the real primary: the session
reset, the released-connection guard, hand-offs to waiting acquires (also when they are cut off),
freed slots, the inactivity sweep, expiry and closing — and the interleavings a review found
(a close, an expire() or a cut-off statement between two owners of a connection)."""

from __future__ import annotations

import asyncio
import contextlib
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
            assert isinstance(conn, asyncpg.Connection)  # as asyncpg's own pool proxy
        assert not hasattr(conn, "__wrapped__")  # introspection of a released one raises nothing else
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


def test_close_finishes_when_a_waiter_handed_a_connection_is_cancelled(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> tuple[bool, int, int]:
        cp = pool.connections
        assert cp is not None

        async def waiter() -> None:
            async with pool.acquire(timeout=10):
                pass

        holder = pool.acquire(timeout=5)
        await holder.__aenter__()
        task = asyncio.create_task(waiter())
        await until(lambda: pool.stats.waiting == 1, "the second acquire waits")
        closing = asyncio.create_task(cp.close())  # e.g. shutdown: runs before the waiter resumes
        await holder.__aexit__(None, None, None)  # no reset round trip: handed to the waiter's future
        task.cancel()  # the request is cancelled (shutdown, client gone) before it resumes
        await asyncio.gather(task, return_exceptions=True)
        done, _ = await asyncio.wait([closing], timeout=3)
        size, idle = cp.size, len(cp.idle)
        if not done:
            cp.terminate()
            closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
        return bool(done), size, idle

    closed, size, idle = run_with_pool(pg, body, min_size=1, max_size=1, reset_session=False)
    assert (closed, size, idle) == (True, 0, 0)


def test_expire_during_a_release_reset_replaces_that_connection(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> bool:
        cp = pool.connections
        assert cp is not None
        acq = pool.acquire(timeout=5)
        proxy = await acq.__aenter__()
        raw = proxy._con
        exiting = asyncio.create_task(acq.__aexit__(None, None, None))
        await asyncio.sleep(0)  # the release now waits for its reset's round trip
        assert proxy._con is None and raw not in cp.idle and not raw.is_closed()
        await pool.expire()  # failover / replace_dsn: every connection must be replaced
        await exiting
        return raw in cp.idle

    assert run_with_pool(pg, body, min_size=1, max_size=1, reset_session=True) is False


def test_expire_after_a_hand_off_replaces_the_connection_handed(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> bool:
        cp = pool.connections
        assert cp is not None
        got: list[object] = []

        async def waiter() -> None:
            async with pool.acquire(timeout=10) as conn:
                got.append(conn._con)

        holder = pool.acquire(timeout=5)
        raw = (await holder.__aenter__())._con
        task = asyncio.create_task(waiter())
        await until(lambda: pool.stats.waiting == 1, "the second acquire waits")
        await holder.__aexit__(None, None, None)  # handed to the waiter's future
        await pool.expire()  # before the waiter resumes
        await asyncio.wait_for(task, 10)
        return got[0] is raw

    assert run_with_pool(pg, body, min_size=1, max_size=1, reset_session=False) is False


def test_expire_during_a_connect_replaces_the_connection_being_opened(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> int:
        cp = pool.connections
        assert cp is not None
        gate = asyncio.Event()
        connect = cp._connect
        opened: list[asyncpg.Connection] = []

        async def slow() -> asyncpg.Connection:
            await gate.wait()  # a connect in flight (to the old host / with the old DSN)
            opened.append(await connect())
            return opened[-1]

        cp._connect = slow  # type: ignore[method-assign]

        async def use() -> asyncpg.Connection:
            async with pool.acquire(timeout=10) as conn:
                await conn.fetchval("SELECT 1")
                return conn._con  # type: ignore[no-any-return]

        task = asyncio.create_task(use())
        await until(lambda: cp.size == 1, "a connect in flight")
        await pool.expire()
        gate.set()
        used = await asyncio.wait_for(task, 10)
        # The connection opened across expire() was closed, the acquire got one opened after it.
        await until(lambda: opened[0].is_closed(), "the connection opened before expire() closed")
        return int(len(opened) == 2 and used is opened[1] and cp.size == 1)

    assert run_with_pool(pg, body, min_size=0, max_size=1, reset_session=False) == 1


def test_a_cut_off_statement_does_not_leave_a_transaction_to_the_next_acquire(pg: HotStandbyCluster) -> None:
    async def body(pool: ManagedPool) -> str:
        async with pool.acquire(timeout=5) as conn:
            with contextlib.suppress(TimeoutError):
                await conn.execute("BEGIN; SELECT pg_sleep(2)", timeout=0.2)
        async with pool.acquire(timeout=5) as conn:  # another request
            try:
                await conn.fetchval("SELECT 1")
            except asyncpg.InFailedSQLTransactionError:
                return "in a failed transaction"
            return "clean" if not conn.is_in_transaction() else "in a transaction"

    assert run_with_pool(pg, body, min_size=1, max_size=1, reset_session=False) == "clean"
