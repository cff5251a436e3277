"""The instrumented acquire: waiting tasks, waits, timeouts, errors; always releases.

Through asyncpg's public API only (the context ``Pool.acquire()`` returns, entered without its
own timeout, and ``Pool.release()``): this pool runs inside users' applications and must survive
asyncpg upgrades. The context is entered (``__aenter__``) rather than awaited: its ``__await__``
wraps the coroutine, and every return through the wrapper raises a StopIteration. The deadline is not
``Pool.acquire(timeout=…)``, which arms and cancels an event-loop timer per acquire, but one timer
per pool (``Deadlines``) that cancels only the acquires past theirs.

Fast path: while fewer connections are held through this pool than its maximum, asyncpg has a
free holder, so the acquire cannot wait for a release; at worst it opens a connection, bounded by
the connect timeout. When that fits in the acquire timeout there is no deadline to arm and no wait
to time: it counts as a zero wait. ``make bench`` measures the whole against a bare asyncpg pool
with the same settings (0.94-0.95 on a saturated pool, where every acquire takes the deadline path).

A class rather than ``@asynccontextmanager``: this is the hot path of every query.
"""

from __future__ import annotations

import asyncio
from asyncio import current_task
from time import monotonic
from typing import Protocol

import asyncpg

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.deadlines import Deadlines
from fasterdb.pools.driver import DRIVER_ERRORS, classify, terminate
from fasterdb.pools.stats import FOLD_SAMPLES, PoolStats


class Acquirable(Protocol):
    """What an acquire needs of its pool (fasterdb.pools.managed.ManagedPool)."""

    name: str
    asyncpg_pool: asyncpg.Pool | None
    deadlines: Deadlines
    held: int  # connections acquired (or being acquired on the fast path) through Acquire, not yet released
    max_size: int  # the pool's maximum number of connections
    connect_timeout: float  # seconds one connection attempt may take

    async def ensure_created(self, timeout: float) -> asyncpg.Pool:
        """The asyncpg pool, created now (within ``timeout``) when missing."""


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
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            managed = self._managed
            stats = self._stats
            pool = managed.asyncpg_pool
            if pool is not None and managed.held < managed.max_size and self._timeout >= managed.connect_timeout:
                # A connection (or a free slot to open one, bounded by the connect timeout) is there
                # now: nothing to wait for, so no deadline to arm and no wait to time. The slot is
                # taken before the await, so concurrent acquires cannot all believe it theirs.
                managed.held += 1
                try:
                    conn = await pool.acquire().__aenter__()
                except BaseException as exc:
                    managed.held -= 1
                    if isinstance(exc, DRIVER_ERRORS):
                        stats.acquire_errors_total += 1
                        raise DatabaseUnavailable(classify(exc), pool=managed.name) from exc
                    raise
                self._pool, self._conn = pool, conn
                stats.immediate += 1
                stats.acquired_total += 1
                if self.notifies:
                    self.acquired()
                return conn
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
                    self._pool = pool
                    conn = await pool.acquire().__aenter__()
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
            self._conn = conn
            managed.held += 1
            stats.acquired_total += 1
            if self.notifies:
                self.acquired()
            return conn
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

    def take(self) -> tuple[asyncpg.Pool, asyncpg.Connection]:
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
        pool, conn = self._pool, self._conn
        if pool is None or conn is None:
            return
        self._conn = None
        if exc is not None and self.cut_off_closes and isinstance(exc, TimeoutError | asyncio.CancelledError):
            # A statement cut off (a command timeout, a cancellation) may be waiting on a server
            # that no longer answers: close the connection rather than wait, in the release, for
            # asyncpg's cancel request to it (another command timeout), as transactions do.
            terminate(conn)
        # asyncpg shields release from cancellation; a broken connection is discarded there. The
        # slot counts as held until asyncpg's holder is free again (a reset is a round trip): the
        # fast path relies on "fewer held than the maximum" meaning a free holder.
        try:
            await pool.release(conn)
        except DRIVER_ERRORS:
            # The reset (ROLLBACK, the session reset) failed: asyncpg has terminated the connection,
            # and the block's outcome stands. Failing it here would fail a read that got its rows,
            # a write that committed.
            pass
        finally:
            self._managed.held -= 1
        if exc is not None and self.cut_off_closes and isinstance(exc, TimeoutError):
            raise DatabaseUnavailable("timeout", pool=self._managed.name) from exc
