"""The health query: can this pool run a statement, and is its server in the role we expect?"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.db.errors import classify
from service.db.pools import ManagedPool
from service.errors import DatabaseUnavailable

HEALTH_SQL = "SELECT pg_is_in_recovery()"


@dataclass(frozen=True)
class PoolCheck:
    """The outcome of one health query on one pool."""

    name: str
    role: str
    ok: bool
    latency_ms: float | None
    error: str | None
    checked_at: float  # time.time() when the answer (or the failure) came
    detail: str | None = None  # driver text for the server log only; never sent to clients
    # Rendered once per check, not once per probe: one check serves many requests.
    public: dict[str, object] = field(init=False, repr=False, compare=False)
    checked_at_iso: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        public = {"name": self.name, "ok": self.ok, "latency_ms": self.latency_ms, "error": self.error}
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "checked_at_iso", iso(self.checked_at))

    def as_dict(self) -> dict[str, object]:
        """The per-pool shape of the /health/db body."""
        return dict(self.public)


def iso(ts: float) -> str:
    """An epoch timestamp as ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def check_pool(pool: ManagedPool, deadline: float) -> PoolCheck:
    """Run the health query with a hard deadline covering acquire, connect and the query.

    A primary in recovery is reported as ``not primary``, a replica that is not as ``not replica``.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            async with pool.acquire(timeout=deadline) as conn:
                in_recovery = await conn.fetchval(HEALTH_SQL)
    except Exception as exc:  # every failure becomes a category; the detail goes to the log
        # DatabaseUnavailable already carries the category; its cause is the driver's error.
        root = exc.__cause__ if isinstance(exc, DatabaseUnavailable) and exc.__cause__ else exc
        category = classify(exc)
        detail = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {deadline:.2f}s"
        return PoolCheck(pool.name, pool.role, False, None, category, time.time(), detail)
    latency = round((time.monotonic() - started) * 1000, 3)
    if pool.role == "primary" and in_recovery:
        return PoolCheck(pool.name, pool.role, False, latency, "not primary", time.time())
    if pool.role == "replica" and not in_recovery:
        return PoolCheck(pool.name, pool.role, False, latency, "not replica", time.time())
    return PoolCheck(pool.name, pool.role, True, latency, None, time.time())
