"""Transactions on a managed pool: the request-scoped helper and the retry policy.

FasterAPI 0.2.14 does not run the code after ``yield`` in dependencies, so handlers and domain
code use ``transaction(pool)`` explicitly: acquire with a deadline, BEGIN, COMMIT when the block
succeeds, ROLLBACK when it raises, always release (also on cancellation). ``run_transaction``
runs a unit of work again from the start after a failure that a retry can cure.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal, TypeVar

import asyncpg

from service.db.errors import DRIVER_ERRORS, translate
from service.db.pool import ManagedPool
from service.errors import DatabaseUnavailable

log = logging.getLogger("fasterdb.transactions")
T = TypeVar("T")
Isolation = Literal["read_committed", "repeatable_read", "serializable"]


class RetryTransaction(Exception):
    """The transaction lost a race (e.g. a concurrent insert of one of its keys): run it again."""


@asynccontextmanager
async def transaction(
    pool: ManagedPool,
    *,
    timeout: float | None = None,
    isolation: Isolation = "read_committed",
    readonly: bool = False,
    internal: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """Acquire (bounded), BEGIN; COMMIT when the block succeeds, ROLLBACK when it raises; release.

    Driver errors leave as our own errors (503 for unavailability, 500 otherwise). ``internal``:
    the sidecar's own background work, counted apart from the application's acquires.
    """
    async with pool.acquire(timeout, internal=internal) as conn:
        try:
            async with conn.transaction(isolation=isolation, readonly=readonly):
                yield conn
        except DRIVER_ERRORS as exc:
            raise translate(exc, pool.name) from exc


async def run_transaction(
    pool: ManagedPool,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    attempts: int = 6,
    budget: float = 10.0,
    isolation: Isolation = "read_committed",
    internal: bool = False,
) -> T:
    """Run ``work(conn)`` in a transaction; on a retryable failure run it again from the start.

    Retryable: serialization failure, deadlock, a connection lost or terminated (also during
    COMMIT — the work must be idempotent, as transfers are through their keys), an unavailable
    database, a lost race (``RetryTransaction``). Backoff doubles from 10 ms up to 200 ms with
    jitter; at most ``attempts`` tries within ``budget`` seconds, then the last error is raised.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    for attempt in range(attempts):
        try:
            async with transaction(pool, isolation=isolation, internal=internal) as conn:
                return await work(conn)
        except (DatabaseUnavailable, RetryTransaction) as exc:
            pause = min(0.01 * 2**attempt, 0.2) * random.uniform(0.5, 1.5)
            if attempt == attempts - 1 or loop.time() + pause > deadline:
                if isinstance(exc, RetryTransaction):
                    raise DatabaseUnavailable("conflicting concurrent transaction", pool=pool.name) from exc
                raise
            log.debug("retrying transaction on %s after %s", pool.name, exc)
            await asyncio.sleep(pause)
    raise RuntimeError("run_transaction: no attempt was made")  # attempts < 1
