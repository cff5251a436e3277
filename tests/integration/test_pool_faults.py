"""The kit's own connection pool (fasterdb.pools.connections via ManagedPool) under REAL PostgreSQL
faults: a server restarted under load, a server frozen (SIGSTOP) while acquires wait and connects
are in flight, backends terminated while idle and while in use, a creation racing a DSN switch,
and many concurrent acquires cut off at random.

After every fault the pool must account for what is really open: ``held`` back to 0, ``size`` ==
``idle`` == the backends pg_stat_activity shows under the pool's application_name; and no acquire
may outlive its timeout (+ a small grace). Every loop is bounded in count and in time; every wait
for a state is a bounded poll.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar
from urllib.parse import quote

import asyncpg
import pytest

from devtools.cluster import APP_USER, DATABASE
from devtools.hot_standby import HotStandbyCluster
from devtools.postgres import Node
from fasterdb.errors import DatabaseUnavailable, OutcomeUnknown
from fasterdb.pools.acquire import Acquire
from fasterdb.pools.driver import DRIVER_ERRORS
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb.pools.transactions import run_transaction, transaction
from tests import faults

T = TypeVar("T")
GRACE = 0.3  # seconds an acquire may run past its timeout (a loaded 2-core machine)


# -- helpers -----------------------------------------------------------------------------------


async def admin(pg: HotStandbyCluster, node: Node | None = None) -> asyncpg.Connection:
    return await faults.admin_connect(pg, node or pg.primary, "fasterdb-test/faults-admin")


async def backends(pg: HotStandbyCluster, pool: ManagedPool, node: Node | None = None) -> list[int]:
    """The pids of the pool's backends on ``node`` (a fresh admin connection: the server may have restarted)."""
    conn = await admin(pg, node)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", pool.application_name
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.01)


def accounts(pool: ManagedPool) -> tuple[int, int, int]:
    """(size, idle, held) as the pool counts them."""
    cp = pool.connections
    assert cp is not None
    return cp.size, len(cp.idle), pool.held


async def settled(pg: HotStandbyCluster, pool: ManagedPool, timeout: float = 8.0) -> tuple[int, int, int, int]:
    """Poll (bounded) until nothing is held and the pool's size == idle == the pool's backends in
    pg_stat_activity; returns the last (size, idle, held, backends) seen either way."""
    deadline = time.monotonic() + timeout
    while True:
        size, idle, held = accounts(pool)
        seen = len(await backends(pg, pool))
        if (held == 0 and size == idle == seen) or time.monotonic() > deadline:
            return size, idle, held, seen
        await asyncio.sleep(0.05)


def new_pool(
    pg: HotStandbyCluster, name: str, dsn: str | None = None, role: str = "primary", **config: object
) -> ManagedPool:
    config.setdefault("max_inactive_connection_lifetime", 300.0)
    return ManagedPool(name, role, dsn or pg.dsn(), PoolConfig(**config), owner=f"faults-{name}")  # type: ignore[arg-type]


async def open_pool(pg: HotStandbyCluster, name: str, **config: object) -> ManagedPool:
    """``new_pool``, opened, and its connection pool created (the database is up)."""
    pool = new_pool(pg, name, **config)
    await pool.open()
    await pool.ensure_created(10)
    return pool


def run(body: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    async def main() -> T:
        async with asyncio.timeout(timeout):
            return await body()

    return asyncio.run(main())


async def timed_acquire(pool: ManagedPool, timeout: float) -> tuple[float, Acquire | Exception]:
    """Enter an acquire; (seconds it took, the Acquire or the exception it raised)."""
    acq = pool.acquire(timeout)
    started = time.monotonic()
    try:
        await acq.__aenter__()
    except (DatabaseUnavailable, *DRIVER_ERRORS) as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, acq


# -- a server restarted under load --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_under_load_recovers_and_counts_what_is_open(pg: HotStandbyCluster, mode: str) -> None:
    async def body() -> None:
        pool = await open_pool(
            pg,
            f"restart-{mode}",
            min_size=2,
            max_size=5,
            acquire_timeout=1.0,
            connect_timeout=1.0,
            command_timeout=2.0,
            reset_session=True,
        )
        stop = asyncio.Event()
        late: list[float] = []
        ok_after: list[int] = []
        restarted = asyncio.Event()

        async def worker() -> None:
            for _ in range(5000):  # bounded; the stop event ends it sooner
                if stop.is_set():
                    return
                took, got = await timed_acquire(pool, 1.0)
                if took > 1.0 + GRACE:
                    late.append(took)
                if not isinstance(got, BaseException):
                    try:
                        await got.connection.fetchval("SELECT pg_sleep(0.002)")
                        if restarted.is_set():
                            ok_after.append(1)
                    except DRIVER_ERRORS:
                        pass
                    finally:
                        await got.__aexit__(None, None, None)
                else:
                    await asyncio.sleep(0.02)  # a failed acquire: back off a little

        workers = [asyncio.create_task(worker()) for _ in range(8)]
        try:
            await until(lambda: pool.stats.acquired_total > 100, "load before the restart")
            # stop + start, not "pg_ctl restart": its server would keep pg_ctl's captured stdout open
            await asyncio.to_thread(pg.stop_node, pg.primary, mode)
            failed = pool.stats.acquire_errors_total + pool.stats.acquire_timeouts_total
            await until(
                lambda: pool.stats.acquire_errors_total + pool.stats.acquire_timeouts_total > failed + 20,
                "acquires tried while the server is down",
                10,
            )
            await asyncio.to_thread(pg.start_node, pg.primary)
            restarted.set()
            await until(lambda: len(ok_after) > 100, "the pool serves again after the restart", 15)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 10)
        size, idle, held, seen = await settled(pg, pool)
        await pool.close(5)
        assert not late, f"acquires past their 1s timeout: {late}"
        assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"

    run(body)
    pg.wait_streaming()  # the replica back on the restarted primary, for the modules after this one


# -- a frozen server ----------------------------------------------------------------------------


def test_frozen_server_every_acquire_ends_in_time_and_the_pool_serves_after_thaw(pg: HotStandbyCluster) -> None:
    async def body() -> None:
        pool = await open_pool(
            pg,
            "frozen",
            min_size=1,
            max_size=3,
            acquire_timeout=0.6,
            connect_timeout=5.0,
            command_timeout=5.0,
            reset_session=True,
        )
        thaw = faults.freeze(pg.primary)
        results: list[tuple[float, object]] = []
        try:
            # The idle connection is taken at once (no wait), its query hangs; two acquires open
            # slots (connects in flight to the frozen server); the rest wait for a connection.
            async def one(delay: float) -> None:
                await asyncio.sleep(delay)
                took, got = await timed_acquire(pool, 0.6)
                results.append((took, got))
                if not isinstance(got, BaseException):
                    try:
                        await got.connection.fetchval("SELECT 1", timeout=5)
                    except DRIVER_ERRORS:
                        pass
                    finally:
                        await got.__aexit__(None, None, None)

            tasks = [asyncio.create_task(one(i * 0.05)) for i in range(8)]
            await until(lambda: len(results) >= 8, "every acquire ended", 5)
            cp = pool.connections
            assert cp is not None
            in_flight = (cp.size, len(cp.idle), pool.stats.waiting)
        finally:
            thaw()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        slow = [took for took, got in results if took > 0.6 + GRACE]
        failed = [got.category for _, got in results if isinstance(got, DatabaseUnavailable)]
        assert not slow, f"acquires past their timeout on a frozen server: {slow}"
        assert failed.count("timeout") == 7, "; ".join(f"{t:.3f} {g}" for t, g in results)
        assert in_flight[2] == 0, f"acquires still waiting on the frozen server: {in_flight}"
        # After the thaw: the pool serves, and every slot is accounted for.
        for _ in range(5):
            async with pool.acquire(timeout=3) as conn:
                assert await conn.fetchval("SELECT 1") == 1
        size, idle, held, seen = await settled(pg, pool)
        await pool.close(5)
        assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"

    run(body)


def test_frozen_server_at_start_acquire_is_bounded_and_the_pool_comes_up_after_thaw(pg: HotStandbyCluster) -> None:
    async def body() -> None:
        pool = new_pool(pg, "frozen-start", min_size=2, max_size=3, acquire_timeout=0.5, connect_timeout=1.0)
        thaw = faults.freeze(pg.primary)
        try:
            await pool.open()  # the background creation's connects hang on the frozen server
            took = []
            for _ in range(3):
                t, got = await timed_acquire(pool, 0.5)
                took.append(t)
                assert isinstance(got, DatabaseUnavailable), got
        finally:
            thaw()
        assert max(took) <= 0.5 + GRACE, took
        await until(lambda: pool.ready_for_acquire, "the pool created after the thaw", 10)
        async with pool.acquire(timeout=3) as conn:
            assert await conn.fetchval("SELECT 1") == 1
        size, idle, held, seen = await settled(pg, pool)
        await pool.close(5)
        assert (held, size, idle, seen) == (0, 2, 2, 2), f"size={size} idle={idle} held={held} backends={seen}"

    run(body)


def test_close_on_a_frozen_server_ends_in_time_and_leaves_nothing_open(pg: HotStandbyCluster) -> None:
    async def body() -> tuple[float, list[int]]:
        pool = await open_pool(pg, "frozen-close", min_size=2, max_size=3, acquire_timeout=1.0, command_timeout=5.0)
        busy = pool.acquire(timeout=1)
        conn = await busy.__aenter__()
        query = asyncio.create_task(conn.fetchval("SELECT pg_sleep(0.01)"))
        thaw = faults.freeze(pg.primary)
        try:
            started = time.monotonic()
            await pool.close(1.0)  # one connection in use (its query hung), two idle (their close hangs)
            took = time.monotonic() - started
        finally:
            thaw()
        await asyncio.gather(query, return_exceptions=True)
        await busy.__aexit__(None, None, None)
        deadline = time.monotonic() + 5
        while (left := await backends(pg, pool)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return took, left

    took, left = run(body)
    assert took <= 1.0 + GRACE, took
    assert not left, f"backends left open after close(): {left}"


# -- backends terminated ------------------------------------------------------------------------


def test_idle_connections_terminated_are_replaced_and_no_longer_counted(pg: HotStandbyCluster) -> None:
    async def body() -> None:
        pool = await open_pool(pg, "term-idle", min_size=3, max_size=3, acquire_timeout=2.0)
        pids = await backends(pg, pool)
        assert len(pids) == 3
        faults.terminate_backends(pg, pg.primary, pool.application_name)
        await until(lambda: all(c.is_closed() for c in pool.connections.idle), "the client saw them closed", 5)  # type: ignore[union-attr]
        async with pool.acquire(timeout=2) as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") not in pids
        size, idle, held, seen = await settled(pg, pool)
        await pool.close(5)
        assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"

    run(body)


def test_a_terminated_idle_connection_below_the_lifo_top_is_not_counted_forever(pg: HotStandbyCluster) -> None:
    async def body() -> tuple[int, int, int, int]:
        # min_size connections, one of them (the coldest: the left end of idle) killed by the server
        # (pg_terminate_backend, an idle_session_timeout, a proxy's idle cut); the pool goes on
        # serving one request at a time from the top of its LIFO, and sweeps every 0.1 s.
        pool = await open_pool(
            pg, "term-cold", min_size=2, max_size=2, acquire_timeout=2.0, max_inactive_connection_lifetime=0.1
        )
        cp = pool.connections
        assert cp is not None
        cold = cp.idle[0].get_server_pid()
        conn = await admin(pg)
        try:
            await conn.fetchval("SELECT pg_terminate_backend($1)", cold)
        finally:
            await conn.close()
        await until(lambda: cp.idle[0].is_closed(), "the client saw it closed", 5)
        deadline = time.monotonic() + 1.0
        for _ in range(200):  # light load for a second (ten sweeps)
            if time.monotonic() > deadline:
                break
            async with pool.acquire(timeout=2) as c:
                await c.fetchval("SELECT 1")
            await asyncio.sleep(0.01)
        result = await settled(pg, pool, timeout=1.0)
        await pool.close(5)
        return result

    size, idle, held, seen = run(body)
    assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"


def test_connections_terminated_in_use_free_their_slots(pg: HotStandbyCluster) -> None:
    async def body() -> None:
        pool = await open_pool(
            pg, "term-busy", min_size=1, max_size=2, acquire_timeout=3.0, command_timeout=10.0, reset_session=True
        )
        errors: list[str] = []

        async def sleeper() -> None:
            async with pool.acquire(timeout=3) as conn:
                try:
                    await conn.fetchval("SELECT pg_sleep(10)")
                except DRIVER_ERRORS as exc:
                    errors.append(type(exc).__name__)

        async def idle_in_transaction() -> None:
            async with pool.acquire(timeout=3) as conn:
                await conn.execute("BEGIN")
                await until(lambda: len(errors) >= 1, "the sleeper terminated", 5)
                await until(lambda: conn.is_closed(), "the client saw its session end", 5)
                try:
                    await conn.fetchval("SELECT 1")
                except DRIVER_ERRORS as exc:
                    errors.append(type(exc).__name__)

        tasks = [asyncio.create_task(sleeper()), asyncio.create_task(idle_in_transaction())]
        await until(lambda: pool.held == 2, "both in use")
        # A third acquire waits for one of them.
        waiter = asyncio.create_task(timed_acquire(pool, 3.0))
        await until(lambda: pool.stats.waiting == 1, "a waiter")
        assert faults.terminate_backends(pg, pg.primary, pool.application_name) == 2
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        took, got = await asyncio.wait_for(waiter, 5)
        assert not isinstance(got, BaseException), got
        assert await got.connection.fetchval("SELECT 1") == 1
        await got.__aexit__(None, None, None)
        assert len(errors) == 2, errors
        size, idle, held, seen = await settled(pg, pool)
        await pool.close(5)
        assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"

    run(body)


# -- many acquires cut off at random ------------------------------------------------------------


def test_random_cancellations_leave_no_slot_leaked_and_no_session_dirty(pg: HotStandbyCluster) -> None:
    async def body() -> None:
        rng = random.Random(20261130)
        pool = await open_pool(
            pg, "cancels", min_size=1, max_size=4, acquire_timeout=0.3, command_timeout=2.0, reset_session=True
        )
        stop_at = time.monotonic() + 2.0
        late: list[float] = []

        async def client() -> None:
            for _ in range(200):
                if time.monotonic() > stop_at:
                    return
                kind = rng.randrange(5)
                started = time.monotonic()
                try:
                    if kind == 4:
                        async with transaction(pool, timeout=0.3) as conn:
                            await conn.fetchval("SELECT pg_sleep($1)", rng.uniform(0, 0.01))
                        continue
                    async with pool.acquire(timeout=rng.uniform(0.05, 0.3)) as conn:
                        if time.monotonic() - started > 0.3 + GRACE:
                            late.append(time.monotonic() - started)
                        if kind == 0:
                            await conn.fetchval("SELECT pg_sleep($1)", rng.uniform(0, 0.02))
                        elif kind == 1:
                            await conn.execute("BEGIN; SET LOCAL work_mem = '2MB'; SELECT 1")
                        elif kind == 2:
                            await conn.execute("SET work_mem = '3MB'")
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    assert task is not None
                    task.uncancel()  # our own canceller: go on with the next round
                except (DatabaseUnavailable, *DRIVER_ERRORS):
                    await asyncio.sleep(0.005)

        tasks = [asyncio.create_task(client()) for _ in range(24)]
        for _ in range(2000):
            if all(t.done() for t in tasks):
                break
            victim = rng.choice(tasks)
            if not victim.done():
                victim.cancel()
            await asyncio.sleep(rng.uniform(0, 0.004))
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        cp = pool.connections
        assert cp is not None
        assert pool.stats.waiting == 0 and not [w for w in cp._waiters if not w.done()]
        size, idle, held, seen = await settled(pg, pool)
        dirty = [c for c in cp.idle if c.is_closed() or c.is_in_transaction()]
        work_mem = set()
        for _ in range(len(cp.idle)):
            async with pool.acquire(timeout=2) as conn:
                work_mem.add(await conn.fetchval("SHOW work_mem"))
        await pool.close(5)
        assert not late, late
        assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"
        assert not dirty and work_mem == {"4MB"}, (dirty, work_mem)

    run(body)


def test_chaos_cancellations_expiry_sweeps_and_terminations_leave_the_accounts_exact(pg: HotStandbyCluster) -> None:
    async def body() -> None:
        rng = random.Random(7)
        pool = await open_pool(
            pg,
            "chaos",
            min_size=1,
            max_size=5,
            acquire_timeout=0.3,
            command_timeout=2.0,
            reset_session=True,
            max_inactive_connection_lifetime=0.05,
        )
        killer = await admin(pg)
        stop_at = time.monotonic() + 2.0
        late: list[float] = []

        async def client() -> None:
            for _ in range(300):
                if time.monotonic() > stop_at:
                    return
                started = time.monotonic()
                try:
                    async with pool.acquire(timeout=rng.uniform(0.05, 0.3)) as conn:
                        if time.monotonic() - started > 0.3 + GRACE:
                            late.append(time.monotonic() - started)
                        await conn.fetchval("SELECT pg_sleep($1)", rng.uniform(0, 0.01))
                except asyncio.CancelledError:
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                except (DatabaseUnavailable, *DRIVER_ERRORS):
                    pass
                await asyncio.sleep(rng.uniform(0, 0.01))

        tasks = [asyncio.create_task(client()) for _ in range(16)]
        for _ in range(3000):
            if all(t.done() for t in tasks):
                break
            r = rng.random()
            if r < 0.6:
                victim = rng.choice(tasks)
                if not victim.done():
                    victim.cancel()
            elif r < 0.7:
                await pool.expire()
            elif r < 0.8:
                await killer.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
                    "WHERE application_name = $1 ORDER BY random() LIMIT 1) s",
                    pool.application_name,
                )
            await asyncio.sleep(rng.uniform(0, 0.01))
        await killer.close()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        cp = pool.connections
        assert cp is not None
        # Let the sweeps run, and let the pool notice the terminated ones (one acquire per slot).
        for _ in range(cp.max_size):
            try:
                async with pool.acquire(timeout=1) as conn:
                    await conn.fetchval("SELECT 1")
            except (DatabaseUnavailable, *DRIVER_ERRORS):
                pass
        size, idle, held, seen = await settled(pg, pool)
        waiting = [w for w in cp._waiters if not w.done()]
        await pool.close(5)
        assert not late, late
        assert not waiting and pool.stats.waiting == 0
        assert (held, size, idle) == (0, seen, seen), f"size={size} idle={idle} held={held} backends={seen}"

    run(body)


# -- expiry, DSN switches and closing, against the lifecycle --------------------------------------


def test_a_dsn_switch_during_a_slow_check_replaces_the_check_connection(pg: HotStandbyCluster) -> None:
    async def body() -> tuple[bool, bool]:
        # The pool's check connection (health checks, catalog views) is busy with a slow statement
        # when the DSN is switched (secret rotation, another host): the next check must reach the
        # new server, as replace_dsn promises ("the check connection at once").
        pool = await open_pool(pg, "check-switch", dsn=pg.dsn(pg.primary), role="replica", min_size=1, max_size=1)
        entered = asyncio.Event()

        async def slow_check() -> None:
            async with pool.check_connection() as conn:
                entered.set()
                await conn.fetchval("SELECT pg_sleep(0.3)")

        task = asyncio.create_task(slow_check())
        await asyncio.wait_for(entered.wait(), 5)
        await pool.replace_dsn(pg.dsn(pg.replica_nodes[0]))
        await asyncio.wait_for(task, 5)
        async with pool.check_connection() as conn:
            check_on_replica = await conn.fetchval("SELECT pg_is_in_recovery()")
        async with pool.acquire(timeout=5) as conn:
            pool_on_replica = await conn.fetchval("SELECT pg_is_in_recovery()")
        await pool.close(5)
        return pool_on_replica, check_on_replica

    pool_on_replica, check_on_replica = run(body)
    assert pool_on_replica, "the pool's connections still reach the old server"
    assert check_on_replica, "the check connection still reaches the old server after replace_dsn()"


def test_close_during_a_creation_made_by_an_acquire_leaves_the_pool_closed(pg: HotStandbyCluster) -> None:
    async def body() -> tuple[bool, str]:
        # The server hangs at start: the background creation's first attempt times out (1.5 s) and
        # sleeps before its next; an acquire meanwhile creates the pool itself, its connects hung on
        # the frozen server; the application shuts down (close()) and the server then answers.
        pool = new_pool(pg, "close-create", min_size=1, max_size=2, acquire_timeout=5.0, connect_timeout=1.5)
        thaw = faults.freeze(pg.primary)
        try:
            await pool.open()
            await until(lambda: pool.first_attempt_done, "the first attempt timed out", 5)  # 1.5 s
            acquiring = asyncio.create_task(timed_acquire(pool, 5.0))
            await until(lambda: pool._create_lock.locked(), "the acquire creates the pool", 1)
            closing = asyncio.create_task(pool.close(5))
            await until(lambda: pool.closed, "close() began", 1)
        finally:
            thaw()
        _, got = await asyncio.wait_for(acquiring, 5)
        if not isinstance(got, BaseException):
            await got.__aexit__(None, None, None)
        await asyncio.wait_for(closing, 10)
        closed = pool.closed
        try:
            async with pool.check_connection() as conn:  # a monitor round after shutdown
                outcome = f"a check connection opened after close() (pid {conn.get_server_pid()})"
        except DatabaseUnavailable as exc:
            outcome = exc.category
        await pool.close(5)
        return closed, outcome

    closed, outcome = run(body)
    assert (closed, outcome) == (True, "pool closed"), f"closed={closed} after close(); check: {outcome}"


# -- a failover: pg_ctl promote of the replica ----------------------------------------------------


@pytest.fixture()
def cluster() -> Iterator[HotStandbyCluster]:
    """A primary and a streaming replica of this test's own (promoted below)."""
    c = HotStandbyCluster(replicas=1)
    c.start()
    try:
        c.sql(
            c.primary,
            "CREATE TABLE public.fault_writes (id bigserial PRIMARY KEY, note text); "
            "GRANT ALL ON public.fault_writes TO PUBLIC; GRANT ALL ON SEQUENCE public.fault_writes_id_seq TO PUBLIC",
        )
        deadline = time.monotonic() + 10
        while c.sql(c.replica_nodes[0], "SELECT to_regclass('public.fault_writes') IS NOT NULL") != "t":
            assert time.monotonic() < deadline, "the table never reached the replica"
            time.sleep(0.05)
        yield c
    finally:
        for node in c.nodes:
            faults.thaw_all(node)
        c.destroy()


def multi_host(c: HotStandbyCluster, first: Node, second: Node) -> str:
    return (
        f"postgresql://{APP_USER}:{quote(c.app_password, safe='')}@127.0.0.1:{first.port},127.0.0.1:{second.port}"
        f"/{DATABASE}"
    )


def test_after_promote_and_25006_no_write_lands_on_the_demoted_server(cluster: HotStandbyCluster) -> None:
    old, new = cluster.primary, cluster.replica_nodes[0]

    async def body() -> tuple[list[tuple[float, int]], list[float], list[int], int]:
        pool = ManagedPool(
            "primary",
            "primary",
            multi_host(cluster, old, new),
            PoolConfig(min_size=2, max_size=4, acquire_timeout=2.0, connect_timeout=2.0),
            owner="faults-promote",
        )
        await pool.open()
        await pool.ensure_created(10)
        expired_at: list[float] = []
        expire = pool.expire

        async def recorded_expire() -> None:
            expired_at.append(time.monotonic())
            await expire()

        pool.expire = recorded_expire  # type: ignore[method-assign]
        writes: list[tuple[float, int]] = []  # (when the transaction began, the server's port)
        stop = asyncio.Event()

        async def work(conn: asyncpg.Connection) -> int:
            await conn.execute("INSERT INTO public.fault_writes (note) VALUES ('w')")
            return int(await conn.fetchval("SELECT inet_server_port()"))

        async def writer() -> None:
            for _ in range(2000):
                if stop.is_set():
                    return
                began = time.monotonic()
                try:
                    port = await run_transaction(pool, work, budget=3.0)
                except (DatabaseUnavailable, OutcomeUnknown):
                    await asyncio.sleep(0.02)
                    continue
                writes.append((began, port))

        writers = [asyncio.create_task(writer()) for _ in range(4)]
        try:
            await until(lambda: len(writes) > 20, "writes on the old primary")
            await asyncio.to_thread(cluster.pg_ctl, new, "promote")
            # The old primary is demoted to read-only under the pool's open connections.
            await asyncio.to_thread(
                cluster.sql, old, "ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf()"
            )
            await until(lambda: bool(expired_at), "a write met 25006 and expired the pool", 10)
            await until(lambda: sum(1 for _, p in writes if p == new.port) > 20, "writes on the new primary", 10)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*writers), 10)
        on_old = len(await backends(cluster, pool, old))
        size, idle, held = accounts(pool)
        on_new = len(await backends(cluster, pool, new))
        await pool.close(5)
        return writes, expired_at, [size, idle, held, on_new], on_old

    writes, expired_at, (size, idle, held, on_new), on_old = run(body)
    late_on_old = [began for began, port in writes if port == old.port and began > expired_at[0]]
    assert not late_on_old, f"{len(late_on_old)} writes begun after expire() committed on the demoted server"
    assert on_old == 0, f"{on_old} pool connections left on the demoted server"
    assert (held, size, idle) == (0, on_new, on_new), (size, idle, held, on_new)


def test_a_dsn_switch_during_the_pools_creation_sends_no_write_to_the_old_primary(cluster: HotStandbyCluster) -> None:
    old, new = cluster.primary, cluster.replica_nodes[0]

    async def body() -> tuple[int, int]:
        # The primary hangs (SIGSTOP) while the application starts: the pool's creation connects to
        # it. The operator promotes the replica and points the application at it (replace_dsn, as a
        # rotated secret does) — then the old primary wakes up, not fenced yet.
        pool = ManagedPool(
            "primary",
            "primary",
            cluster.dsn(old),
            PoolConfig(min_size=2, max_size=2, acquire_timeout=5.0, connect_timeout=5.0),
            owner="faults-switch",
        )
        thaw = faults.freeze(old)
        try:
            await pool.open()
            await until(lambda: pool._create_lock.locked(), "the creation connects to the frozen primary", 2)
            await asyncio.to_thread(cluster.pg_ctl, new, "promote")
            await pool.replace_dsn(cluster.dsn(new))
        finally:
            thaw()
        await until(lambda: pool.ready_for_acquire, "the pool created", 10)
        async with transaction(pool, timeout=5) as conn:
            await conn.execute("INSERT INTO public.fault_writes (note) VALUES ('after replace_dsn')")
            port = int(await conn.fetchval("SELECT inet_server_port()"))
        on_old = len(await backends(cluster, pool, old))
        await pool.close(5)
        return port, on_old

    port, on_old = run(body)
    assert port == new.port, f"a write begun after replace_dsn(new primary) committed on the old primary ({port})"
    assert on_old == 0, f"{on_old} pool connections on the old primary after replace_dsn()"
