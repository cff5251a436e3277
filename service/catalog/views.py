"""The database's own view, cached: one catalog round per view, pool and TTL however many ask.

Every view comes from the pool's monitor connection under the health deadline (the same error
categories as /health/db); a failure is DatabaseUnavailable (503 at the edge) and is not cached.
/db/* requests, `fasterdb-admin` and Prometheus scrapes all read through these caches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fasterdb.errors import DatabaseUnavailable, NotFound
from fasterdb.pools.databases import Databases
from fasterdb.pools.managed import ManagedPool

from ..db.monitor import Bounded
from ..single_flight import SingleFlight
from . import sql as sql

T = TypeVar("T")


@dataclass(frozen=True)
class Seen(Generic[T]):
    """A view's value, the pool whose server gave it, and when (time.time())."""

    value: T
    pool: str
    at: float


class Catalog:
    """Single-flight caches of the activity, slots and wraparound views of every pool's server."""

    def __init__(self, databases: Databases, deadline: float, ttl: float) -> None:
        self.databases = databases
        self.deadline = deadline
        self.ttl = ttl
        # The outcome of each view's last fetch per pool: None when it answered, else the category.
        self.failures: dict[tuple[str, str], str | None] = {}
        self._activity = {p.name: self._cache("activity", p, sql.fetch_activity) for p in databases}
        self._slots = {p.name: self._cache("slots", p, sql.fetch_slots) for p in databases}
        self._wraparound = {p.name: self._cache("wraparound", p, sql.fetch_wraparound) for p in databases}

    def _cache(
        self, view: str, pool: ManagedPool, fetch: Callable[[ManagedPool, float], Awaitable[Bounded[T]]]
    ) -> SingleFlight[Seen[T]]:
        async def run() -> Seen[T]:
            result = await fetch(pool, self.deadline)
            self.failures[(view, pool.name)] = result.error or (None if result.value is not None else "no answer")
            if result.error is not None or result.value is None:
                raise DatabaseUnavailable(result.error or "no answer", pool=pool.name)
            return Seen(result.value, pool.name, time.time())

        return SingleFlight(run, self.ttl)

    def _pool(self, name: str | None) -> str:
        name = name or self.databases.primary.name
        if self.databases.named(name) is None:
            raise NotFound(f"no pool named {name!r}", code="pool_not_found")
        return name

    async def activity(self, pool: str | None = None) -> Seen[sql.Activity]:
        """Sessions and connection limits of ``pool``'s server (default: the primary)."""
        return await self._activity[self._pool(pool)].get()

    async def slots(self, pool: str | None = None) -> Seen[list[sql.Slot]]:
        """Replication slots of ``pool``'s server (default: the primary)."""
        return await self._slots[self._pool(pool)].get()

    async def wraparound(self, pool: str | None = None) -> Seen[sql.Wraparound]:
        """Transaction-ID ages of ``pool``'s server (default: the primary)."""
        return await self._wraparound[self._pool(pool)].get()

    async def refresh(self, pool: str | None = None) -> None:
        """Every view of ``pool`` through the caches (a scrape's one catalog round per TTL); never raises."""
        name = self._pool(pool)
        # Concurrently: they share the monitor connection one at a time, each under its deadline,
        # so a server that does not answer costs one deadline, not three.
        await asyncio.gather(
            self._activity[name].get(), self._slots[name].get(), self._wraparound[name].get(), return_exceptions=True
        )  # failures are recorded in self.failures; the metrics say so

    def answered(self, view: str, pool: str) -> bool:
        """Whether the last fetch of ``view`` on ``pool`` got an answer (False before the first)."""
        return (view, pool) in self.failures and self.failures[(view, pool)] is None

    def cached_activity(self, pool: str) -> Seen[sql.Activity] | None:
        """The last activity view of ``pool`` without asking the server (for /metrics)."""
        return self._activity[pool].cached

    def cached_slots(self, pool: str) -> Seen[list[sql.Slot]] | None:
        """The last slots view of ``pool`` without asking the server (for /metrics)."""
        return self._slots[pool].cached

    def cached_wraparound(self, pool: str) -> Seen[sql.Wraparound] | None:
        """The last wraparound view of ``pool`` without asking the server (for /metrics)."""
        return self._wraparound[pool].cached
