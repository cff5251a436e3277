"""Pool health: cached, single-flight health checks of every pool.

One database check serves every caller inside the cache TTL, and concurrent callers await the
same in-flight check, so 500 probes per second cost about one query per TTL. A failed check is
re-checked on the first probe after ``FAILURE_TTL`` (still one query for all concurrent probes), so
a cached failure does not outlive the fault. Every answer
arrives within the health timeout, whatever the database does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.databases import Databases
from fasterdb.pools.managed import ManagedPool

from ..single_flight import SingleFlight
from ..transitions import TransitionLog
from .sql import read_roles

log = logging.getLogger("fasterdb.health")


@dataclass(frozen=True)
class PoolCheck:
    """The outcome of one health check of one pool."""

    name: str
    role: str
    ok: bool
    latency_ms: float | None
    error: str | None
    checked_at: float  # time.time() when the answer (or the failure) came
    detail: str | None = None  # driver text for the server log only; never sent to clients


async def check_pool(pool: ManagedPool, deadline: float) -> PoolCheck:
    """Can the pool run a statement in time, and is its server in the role we expect?

    A primary must be out of recovery and accept writes (else ``not primary``: its connections are
    replaced, so the next ones go through a multi-host DSN to the host that takes writes now); a
    replica must be in recovery (else ``not replica``).
    """
    result = await read_roles(pool, deadline)
    if result.error is not None:
        return PoolCheck(pool.name, pool.role, False, None, result.error, time.time(), result.detail)
    in_recovery, read_only = result.value or (False, False)
    latency = result.latency_ms
    if not pool.ready_for_acquire:
        # The database answers but the pool was never created (it was down at start): create it
        # now, within what is left of the deadline, rather than after the connect loop's backoff.
        left = deadline - (latency or 0) / 1000
        try:
            await pool.ensure_created(max(0.01, left))
        except DatabaseUnavailable:
            return PoolCheck(pool.name, pool.role, False, latency, "pool not ready", time.time())
    if pool.role == "primary" and (in_recovery or read_only):
        await pool.expire()
        return PoolCheck(pool.name, pool.role, False, latency, "not primary", time.time())
    if pool.role == "replica" and not in_recovery:
        if pool.multi_host:  # the host it reached was promoted: the next connect looks for a standby
            await pool.expire()
        return PoolCheck(pool.name, pool.role, False, latency, "not replica", time.time())
    return PoolCheck(pool.name, pool.role, True, latency, None, time.time())


def _failed(check: PoolCheck) -> bool:
    return not check.ok


class PoolHealth:
    """Health of every pool, each behind its own single-flight cache."""

    def __init__(self, databases: Databases, timeout: float, ttl: float) -> None:
        self.databases = databases
        # Leave a little of the budget for building and sending the response.
        self.deadline = max(timeout - 0.05, timeout * 0.8)
        self._checks: dict[str, SingleFlight[PoolCheck]] = {
            pool.name: SingleFlight(self._checker(pool), ttl, failed=_failed, ahead=True) for pool in databases
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

    def fresh(self, name: str) -> PoolCheck | None:
        """The cached health of one pool when it need not be checked again now, else None."""
        return self._checks[name].peek()

    async def check_primary(self) -> PoolCheck:
        """The (cached) health of the primary pool."""
        return await self.check(self.databases.primary.name)

    async def check_replicas(self) -> list[PoolCheck]:
        """The (cached) health of every replica pool, checked concurrently."""
        return list(await asyncio.gather(*(self.check(p.name) for p in self.databases.replicas)))

    def last(self, name: str) -> PoolCheck | None:
        """The most recent check of a pool without running one (for /pools and /metrics)."""
        return self._checks[name].cached
