"""The health query: can this pool run a statement, and is its server in the role we expect?

A primary must be out of recovery and accept writes; a replica must be in recovery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.driver import classify
from fasterdb.pools.managed import Connection, ManagedPool

# One statement: in recovery (a standby)? and does it refuse writes (default_transaction_read_only)?
HEALTH_SQL = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
T = TypeVar("T")


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


def iso(ts: float) -> str:
    """An epoch timestamp as ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Bounded(Generic[T]):
    """The outcome of one statement run under a hard deadline: a value, or a failure category."""

    value: T | None
    error: str | None
    detail: str | None
    latency_ms: float | None


async def run_bounded(pool: ManagedPool, deadline: float, query: Callable[[Connection], Awaitable[T]]) -> Bounded[T]:
    """Run ``query`` on the pool's monitor connection with a hard deadline covering connect, TLS,
    authentication and the statement.

    Never raises: every failure becomes a short category, with the driver's text kept apart as
    ``detail`` for the server log.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            async with pool.check_connection() as conn:
                value = await query(conn)
    except Exception as exc:
        # DatabaseUnavailable already carries the category; its cause is the driver's error.
        root = exc.__cause__ if isinstance(exc, DatabaseUnavailable) and exc.__cause__ else exc
        detail = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {deadline:.2f}s"
        return Bounded(None, classify(exc), detail, None)
    return Bounded(value, None, None, round((time.monotonic() - started) * 1000, 3))


async def _roles(conn: Connection) -> tuple[bool, bool]:
    """(in recovery, read-only) of the server."""
    row = await conn.fetchrow(HEALTH_SQL)
    return bool(row[0]), bool(row[1])


async def check_pool(pool: ManagedPool, deadline: float) -> PoolCheck:
    """The health query; a primary in recovery is ``not primary``, a replica that is not, ``not replica``."""
    result = await run_bounded(pool, deadline, _roles)
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
        # The server lost its primary role (a failover) or refuses writes: connections to it are
        # useless for writes. Replace them all, so the next ones go (through a multi-host DSN)
        # to the host that takes writes now.
        await pool.expire()
        return PoolCheck(pool.name, pool.role, False, latency, "not primary", time.time())
    if pool.role == "replica" and not in_recovery:
        return PoolCheck(pool.name, pool.role, False, latency, "not replica", time.time())
    return PoolCheck(pool.name, pool.role, True, latency, None, time.time())
