"""The instrumented acquire: waiting tasks, waits, timeouts, errors; always releases.

A class rather than ``@asynccontextmanager``: this is the hot path of every query.

Fast path: when a connection is already queued in the asyncpg pool, acquiring returns without
suspending, so there is no wait to time and no deadline to arm; the acquire counts as a zero
wait. It is taken only when the pool's connect timeout fits in the acquire timeout, so a queued
holder that must reconnect is still bounded by the acquire's deadline.

asyncpg offers no public O(1) "is a connection queued" (``get_idle_size()`` walks every holder),
so this reads the pool's ``_queue``, and it acquires through ``Pool._acquire`` (what awaiting
``Pool.acquire()`` runs, minus a context object and two calls). ``tests/unit/
test_instrumentation.py`` pins both for the asyncpg version we require; ``make bench`` measures
the whole at about 0.97 of a bare asyncpg pool's client-side cost per acquire + ``SELECT 1``.
"""

from __future__ import annotations

import asyncio
from asyncio import current_task
from time import monotonic
from typing import Protocol

import asyncpg

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.deadlines import Deadlines
from fasterdb.pools.driver import DRIVER_ERRORS, classify
from fasterdb.pools.stats import FOLD_SAMPLES, PoolStats

# What this module uses of asyncpg.Pool beyond its public API (see the module docstring).
QUEUE_SLOT = "_queue"
ACQUIRE_METHOD = "_acquire"


class Acquirable(Protocol):
    """What an acquire needs of its pool (service.db.pool.ManagedPool)."""

    name: str
    asyncpg_pool: asyncpg.Pool | None
    deadlines: Deadlines

    @property
    def connect_timeout(self) -> float:
        """Seconds one connection attempt may take."""

    async def ensure_created(self, timeout: float) -> asyncpg.Pool:
        """The asyncpg pool, created now (within ``timeout``) when missing."""


class Acquire:
    """``async with managed.acquire(timeout) as conn``: a bounded, counted acquire and its release."""

    __slots__ = ("_managed", "_timeout", "_stats", "_pool", "_conn")

    def __init__(self, managed: Acquirable, timeout: float, stats: PoolStats) -> None:
        self._managed = managed
        self._timeout = timeout
        self._stats = stats  # the pool's statistics, or those of the sidecar's own background work
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        managed = self._managed
        stats = self._stats
        pool = managed.asyncpg_pool
        if pool is not None and not pool._queue.empty() and self._timeout >= managed.connect_timeout:
            try:
                conn = await pool._acquire(None)
            except DRIVER_ERRORS as exc:
                stats.acquire_errors_total += 1
                raise DatabaseUnavailable(classify(exc), pool=managed.name) from exc
            self._pool, self._conn = pool, conn
            stats.immediate += 1
            stats.acquired_total += 1
            return conn
        stats.waiting += 1
        started = monotonic()
        task = current_task()
        if task is None:
            raise RuntimeError("acquire outside a task")
        # Deadlines.enter / leave and PoolStats.observe_wait, inlined: method calls are a
        # measurable share of an acquire + SELECT 1 (tests/bench/bench_pools.py).
        deadlines = managed.deadlines
        waiting = deadlines.waiting
        deadline = started + self._timeout
        waiting[task] = deadline
        if deadline < deadlines.armed_at:
            deadlines.arm(deadline)
        try:
            try:
                if pool is None:  # never created (database down at start): one bounded attempt now
                    pool = await managed.ensure_created(self._timeout)
                self._pool = pool
                conn = await pool._acquire(None)
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
            now = monotonic()
            pending = stats.pending
            pending.append(now - started)
            if now >= stats.fold_due or len(pending) >= FOLD_SAMPLES:
                stats.fold(now)
        self._conn = conn
        stats.acquired_total += 1
        return conn

    async def __aexit__(self, *exc_info: object) -> None:
        pool, conn = self._pool, self._conn
        if pool is None or conn is None:
            return
        self._conn = None
        # asyncpg shields release from cancellation; a broken connection is discarded there.
        await pool.release(conn)
