"""Transactions on a managed pool: the request-scoped helper and the retry policy.

FasterAPI 0.2.14 does not run the code after ``yield`` in dependencies, so handlers and domain
code use ``transaction(pool)`` explicitly: acquire with a deadline, BEGIN, COMMIT when the block
succeeds, ROLLBACK when it raises, always release (also on cancellation). ``run_transaction``
runs a unit of work again from the start after a failure that a retry can cure, all of it within
one time budget.

Two failures get special care. A block cut off by its deadline or a cancellation may have left a
statement running on a server that no longer answers (frozen, partitioned): its connection is
terminated rather than asked to ROLLBACK, which would wait on that server without end; the
server rolls the transaction back when it sees the connection gone. A read-only error (SQLSTATE
25006) means the server under the pool lost its primary role (a failover): the connection is
terminated and the pool's other connections are expired, so the retry connects afresh — through
a multi-host DSN, to the host that is now primary.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal, TypeVar

import asyncpg

from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.driver import DRIVER_ERRORS, translate
from fasterdb.pools.managed import ManagedPool

log = logging.getLogger("fasterdb.transactions")
T = TypeVar("T")
Isolation = Literal["read_committed", "repeatable_read", "serializable"]
ROLLBACK_TIMEOUT = 5.0  # a ROLLBACK that takes longer means the server is gone: terminate instead


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
        tx = conn.transaction(isolation=isolation, readonly=readonly)
        try:
            await tx.start()
        except (asyncio.CancelledError, TimeoutError):
            _terminate(conn)  # cut off mid-BEGIN: releasing would wait on the server
            raise
        except DRIVER_ERRORS as exc:
            raise translate(exc, pool.name) from exc
        try:
            yield conn
        except (asyncio.CancelledError, TimeoutError):
            _terminate(conn)  # the server may not answer a ROLLBACK; it rolls back on its own
            raise
        except BaseException as exc:
            await _rollback(tx, conn)
            if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
                _terminate(conn)
                await pool.expire()
                log.warning("pool %s: the server is read-only (failover?); reconnecting", pool.name)
            if isinstance(exc, DRIVER_ERRORS):
                raise translate(exc, pool.name) from exc
            raise
        try:
            await tx.commit()
        except (asyncio.CancelledError, TimeoutError):
            _terminate(conn)
            raise
        except DRIVER_ERRORS as exc:
            raise translate(exc, pool.name) from exc


def _terminate(conn: asyncpg.Connection) -> None:
    """Close the connection at once (no round trip); nothing to do when it is gone already."""
    try:
        conn.terminate()
    except asyncpg.InterfaceError:
        pass  # lost and released back to the pool by asyncpg: already closed


async def _rollback(tx: asyncpg.transaction.Transaction, conn: asyncpg.Connection) -> None:
    """ROLLBACK within ROLLBACK_TIMEOUT; a connection that cannot do it is terminated."""
    try:
        if conn.is_closed():
            return
    except asyncpg.InterfaceError:
        return  # lost and released back to the pool by asyncpg: the server rolled back
    try:
        async with asyncio.timeout(ROLLBACK_TIMEOUT):
            await tx.rollback()
    except (TimeoutError, *DRIVER_ERRORS):
        _terminate(conn)


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
    database, a read-only server (failover), a lost race (``RetryTransaction``). Backoff doubles
    from 10 ms up to 200 ms with jitter; at most ``attempts`` tries, and all of it within
    ``budget`` seconds: each attempt (acquire included) may take only what is left of the budget,
    so the call returns in time whatever the database does.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    for attempt in range(attempts):
        left = deadline - loop.time()
        try:
            async with asyncio.timeout(left):
                async with transaction(pool, timeout=left, isolation=isolation, internal=internal) as conn:
                    return await work(conn)
        except TimeoutError as exc:
            raise DatabaseUnavailable("timeout", pool=pool.name) from exc
        except (DatabaseUnavailable, RetryTransaction) as exc:
            pause = min(0.01 * 2**attempt, 0.2) * random.uniform(0.5, 1.5)
            if attempt == attempts - 1 or loop.time() + pause >= deadline:
                if isinstance(exc, RetryTransaction):
                    raise DatabaseUnavailable("conflicting concurrent transaction", pool=pool.name) from exc
                raise
            log.debug("retrying transaction on %s after %s", pool.name, exc)
            await asyncio.sleep(pause)
    raise RuntimeError("run_transaction: no attempt was made")  # attempts < 1
