"""The database monitor: cached, single-flight health checks of every pool.

One database check serves every caller inside the cache TTL, and concurrent callers await the
same in-flight check, so 500 probes per second cost about one query per TTL. Every answer
arrives within the health timeout, whatever the database does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from service.db.checks import PoolCheck, check_pool
from service.db.pools import Databases, ManagedPool

log = logging.getLogger("fasterdb.health")

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Caches the result of ``fetch`` for ``ttl`` seconds; concurrent misses share one call."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._value: T | None = None
        self._stamp = 0.0  # time.monotonic() when _value was produced
        self._inflight: asyncio.Task[T] | None = None

    @property
    def cached(self) -> T | None:
        """The last value, however old (None before the first fetch)."""
        return self._value

    def age(self) -> float:
        """Seconds since the cached value was produced."""
        return time.monotonic() - self._stamp

    async def get(self) -> T:
        """The cached value if fresh, else the result of the (shared) in-flight fetch."""
        if self._value is not None and self.age() < self._ttl:
            return self._value
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._run())
        # shield: one impatient caller being cancelled must not cancel the others' check
        return await asyncio.shield(self._inflight)

    async def _run(self) -> T:
        try:
            value = await self._fetch()
            self._value, self._stamp = value, time.monotonic()
            return value
        finally:
            self._inflight = None


class DatabaseMonitor:
    """Health of every pool, each behind its own single-flight cache."""

    def __init__(self, databases: Databases, timeout: float, ttl: float) -> None:
        self.databases = databases
        # Leave a little of the budget for building and sending the response.
        self.deadline = max(timeout - 0.05, timeout * 0.8)
        self._checks: dict[str, SingleFlight[PoolCheck]] = {
            pool.name: SingleFlight(self._checker(pool), ttl) for pool in databases
        }
        self._last_logged: dict[str, tuple[bool, str | None, float]] = {}
        self.quiet = False  # set while shutting down: checks cut off by the closing pools are expected

    def _checker(self, pool: ManagedPool) -> Callable[[], Awaitable[PoolCheck]]:
        async def run() -> PoolCheck:
            result = await check_pool(pool, self.deadline)
            self._log_transition(result)
            return result

        return run

    def _log_transition(self, result: PoolCheck) -> None:
        """Log a pool going up or down (and repeat a failure once a minute), not every check."""
        if self.quiet:
            return
        previous = self._last_logged.get(result.name)
        now = time.monotonic()
        if previous is not None and previous[:2] == (result.ok, result.error):
            if result.ok or now - previous[2] < 60:
                return
        self._last_logged[result.name] = (result.ok, result.error, now)
        if result.ok:
            if previous is not None:
                log.info("pool %s is available again", result.name, extra={"pool": result.name})
        else:
            log.warning(
                "pool %s is unavailable: %s (%s)",
                result.name,
                result.error,
                result.detail,
                extra={"pool": result.name, "category": result.error},
            )

    async def check(self, name: str) -> PoolCheck:
        """The (cached) health of one pool."""
        return await self._checks[name].get()

    async def check_primary(self) -> PoolCheck:
        """The (cached) health of the primary pool."""
        return await self.check(self.databases.primary.name)

    async def check_replicas(self) -> list[PoolCheck]:
        """The (cached) health of every replica pool, checked concurrently."""
        return list(await asyncio.gather(*(self.check(p.name) for p in self.databases.replicas)))

    def last(self, name: str) -> PoolCheck | None:
        """The most recent check of a pool without running one (for /pools and /metrics)."""
        return self._checks[name].cached
