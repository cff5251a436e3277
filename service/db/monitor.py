"""Statements on a pool's monitor connection under a hard deadline: a value, or a failure category.

Health checks, replication positions and the catalog views all run this way: on the pool's
dedicated check connection (never queued behind the pool's own traffic), bounded by the health
deadline from connect to result, and never raising — every failure is a short category, with the
driver's text kept apart for the server log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.driver import classify
from fasterdb.pools.managed import Connection, ManagedPool

T = TypeVar("T")


@dataclass(frozen=True)
class Bounded(Generic[T]):
    """The outcome of one statement run under a hard deadline: a value, or a failure category."""

    value: T | None
    error: str | None
    detail: str | None
    latency_ms: float | None


async def run_bounded(pool: ManagedPool, deadline: float, query: Callable[[Connection], Awaitable[T]]) -> Bounded[T]:
    """Run ``query`` on the pool's monitor connection with a deadline covering connect, TLS,
    authentication and the statement; never raises."""
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
