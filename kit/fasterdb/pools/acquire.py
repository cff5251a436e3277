"""The instrumented acquire: waiting tasks, waits, timeouts, errors; always releases.

On the kit's own pool (``fasterdb.pools.connections``). Fast path: an idle connection is popped
from the pool's deque, without an await; there is nothing to wait for, so no deadline to arm and
no wait to time: it counts as a zero wait. Otherwise the deadline is not ``asyncio.timeout``,
which arms and cancels an event-loop timer per acquire, but one timer per pool (``Deadlines``)
that cancels only the acquires past theirs. ``make bench`` measures the whole against a bare
asyncpg pool with the same settings and the same session reset.

A class rather than ``@asynccontextmanager``: this is the hot path of every query.
"""

from __future__ import annotations

import asyncio
from asyncio import current_task
from time import monotonic
from typing import Protocol

import asyncpg

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.connections import ConnectionPool, PooledConnection
from fasterdb.pools.deadlines import Deadlines
from fasterdb.pools.driver import DRIVER_ERRORS, classify
from fasterdb.pools.stats import FOLD_SAMPLES, PoolStats


class Acquirable(Protocol):
    """What an acquire needs of its pool (fasterdb.pools.managed.ManagedPool)."""

    name: str
    connections: ConnectionPool | None
    deadlines: Deadlines

    async def ensure_created(self, timeout: float) -> ConnectionPool:
        """The connection pool, created now (within ``timeout``) when missing."""


class Acquire:
    """``async with managed.acquire(timeout) as conn``: a bounded, counted acquire and its release."""

    __slots__ = ("_managed", "_timeout", "_stats", "_pool", "_conn")
    # Whether a block cut off by a timeout or a cancellation closes its connection instead of
    # releasing it for reuse, and a timeout in the block raises DatabaseUnavailable("timeout")
    # (the kit's reads: fasterdb.database.Read).
    cut_off_closes = False
    # Whether a failed acquire (DatabaseUnavailable, a cancellation...) calls ``fall_back`` with
    # what it raised: what that returns is the connection, what it raises the failure. The kit's
    # read takes the primary this way when its replica fails, without a coroutine of its own
    # around this one (a frame every wait would resume through).
    falls_back = False
    # Whether a successful acquire calls ``acquired()`` before it returns the connection (the
    # kit's read counts itself and names its server there: only once a server has answered).
    notifies = False

    def __init__(self, managed: Acquirable, timeout: float, stats: PoolStats) -> None:
        self._managed = managed
        self._timeout = timeout
        self._stats = stats  # the pool's statistics, or those of the owner's own background work
        self._pool: ConnectionPool | None = None
        self._conn: PooledConnection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            managed = self._managed
            stats = self._stats
            pool = managed.connections
            if pool is not None:
                idle = pool.idle
                while idle:
                    # An idle connection: nothing to wait for, so no deadline to arm and no wait
                    # to time (ConnectionPool.get's first step, inlined).
                    conn = idle.pop()
                    if len(idle) < pool.low:
                        pool.low = len(idle)
                    if conn.is_closed():
                        pool.forget(conn)
                        continue
                    proxy = _new_proxy(PooledConnection)
                    proxy._con = conn
                    self._pool, self._conn = pool, proxy
                    stats.immediate += 1
                    stats.acquired_total += 1
                    if self.notifies:
                        self.acquired()
                    return proxy
            # Deadlines.enter / leave, inlined: method calls are a measurable share of an acquire +
            # SELECT 1 on a saturated pool (tests/bench/bench_pools.py).
            deadlines = managed.deadlines
            # With the pool's loop given, no get_running_loop (a getpid() system call in CPython).
            task = deadlines.running_task()
            if task is None:
                task = current_task()
                if task is None:
                    raise RuntimeError("acquire outside a task")
            waiting = deadlines.waiting
            started = monotonic()
            deadline = started + self._timeout
            waiting[task] = deadline
            if deadline < deadlines.armed_at:
                deadlines.arm(deadline)
            stats.waiting += 1
            try:
                try:
                    if pool is None:  # never created (database down at start): one bounded attempt now
                        pool = await managed.ensure_created(self._timeout)
                    conn = await pool.get()
                except asyncio.CancelledError:
                    if deadlines.expired(task):
                        raise TimeoutError from None
                    raise
            except TimeoutError as exc:
                stats.acquire_timeouts_total += 1
                raise DatabaseUnavailable("timeout", pool=managed.name) from exc
            except DRIVER_ERRORS as exc:
                stats.acquire_errors_total += 1
                raise DatabaseUnavailable(classify(exc), pool=managed.name) from exc
            except DatabaseUnavailable as exc:
                if exc.category == "timeout":
                    stats.acquire_timeouts_total += 1
                else:
                    stats.acquire_errors_total += 1
                raise
            finally:
                del waiting[task]
                if deadlines.expired_tasks:
                    deadlines.expired_tasks.discard(task)
                stats.waiting -= 1
                # PoolStats.observe_wait, inlined (see above)
                now = monotonic()
                pending = stats.pending
                pending.append(now - started)
                if now >= stats.fold_due or len(pending) >= FOLD_SAMPLES:
                    stats.fold(now)
            proxy = _new_proxy(PooledConnection)
            proxy._con = conn
            self._pool, self._conn = pool, proxy
            stats.acquired_total += 1
            if self.notifies:
                self.acquired()
            return proxy
        except BaseException as exc:
            # One handler around the whole acquire (free until something raises, in 3.11+)
            # rather than a coroutine around it.
            if not self.falls_back:
                raise
            return await self.fall_back(exc)

    async def fall_back(self, exc: BaseException) -> asyncpg.Connection:
        """With ``falls_back``: the connection to use instead, after the acquire raised ``exc``."""
        raise exc

    def acquired(self) -> None:
        """With ``notifies``: called once the connection is acquired, before it is returned."""

    def take(self) -> tuple[ConnectionPool, PooledConnection]:
        """Hand the acquired connection, and the duty to release it, to another acquire of the
        same pool (this one's exit then releases nothing)."""
        pool, conn = self._pool, self._conn
        if pool is None or conn is None:
            raise RuntimeError("not acquired")
        self._conn = None
        return pool, conn

    @property
    def connection(self) -> asyncpg.Connection:
        """The acquired connection (after ``__aenter__``)."""
        if self._conn is None:
            raise RuntimeError("not acquired")
        return self._conn

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        pool, proxy = self._pool, self._conn
        if pool is None or proxy is None:
            return
        self._conn = None
        conn = proxy._con
        proxy._con = None  # the handler's reference is refused from here on
        if conn is None:
            return
        if exc is not None and self.cut_off_closes and isinstance(exc, TimeoutError | asyncio.CancelledError):
            # A read cut off (a command timeout, a cancellation) may be waiting on a server that
            # no longer answers: its connection is closed, not reset for reuse, as transactions do.
            conn.terminate()
        try:
            await pool.release(conn)
        except DRIVER_ERRORS:
            # The reset (ROLLBACK, the session reset) failed: the pool has terminated the
            # connection, and the block's outcome stands. Failing it here would fail a read that
            # got its rows, a write that committed.
            pass
        if exc is not None and self.cut_off_closes and isinstance(exc, TimeoutError):
            raise DatabaseUnavailable("timeout", pool=self._managed.name) from exc


_new_proxy = object.__new__  # a PooledConnection without __init__ (it has none): the hot path sets _con
