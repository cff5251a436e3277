"""Pool health: cached, single-flight health checks of every pool.

One database check serves every caller inside the cache TTL, and concurrent callers await the
same in-flight check, so 500 probes per second cost about one query per TTL. Every answer
arrives within the health timeout, whatever the database does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fasterdb.pools.managed import Databases, ManagedPool

from ..single_flight import SingleFlight
from ..transitions import TransitionLog
from .sql import PoolCheck, check_pool

log = logging.getLogger("fasterdb.health")


class PoolHealth:
    """Health of every pool, each behind its own single-flight cache."""

    def __init__(self, databases: Databases, timeout: float, ttl: float) -> None:
        self.databases = databases
        # Leave a little of the budget for building and sending the response.
        self.deadline = max(timeout - 0.05, timeout * 0.8)
        self._checks: dict[str, SingleFlight[PoolCheck]] = {
            pool.name: SingleFlight(self._checker(pool), ttl) for pool in databases
        }
        self.transitions = TransitionLog(log)

    def _checker(self, pool: ManagedPool) -> Callable[[], Awaitable[PoolCheck]]:
        async def run() -> PoolCheck:
            result = await check_pool(pool, self.deadline)
            self.transitions.record(
                result.name,
                result.ok,
                result.error,
                down=f"pool {result.name} is unavailable: {result.error} ({result.detail})",
                up=f"pool {result.name} is available again",
                pool=result.name,
                category=result.error,
            )
            return result

        return run

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
