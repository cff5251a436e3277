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

A COMMIT whose answer never arrives (the connection lost, terminated or cut off during it) has an
unknown outcome: ``OutcomeUnknown``, which ``run_transaction`` retries only for work that is
idempotent (``idempotent=True``, as the sidecar's transfers are through their keys), never blindly.

Work that is one statement can run as it: ``statement(pool)`` (and ``run_transaction(...,
one_statement=True)``) sends no BEGIN and no COMMIT; PostgreSQL runs the statement in its own
implicit transaction, so the statement's answer is its COMMIT's — one round trip instead of three.
The price: the whole statement is the window in which a cut-off leaves the outcome unknown, not
only its COMMIT. A statement whose connection was closed is stopped by the server within the
pool's ``client_check_interval``; one that reached a server that then froze (SIGSTOP, a hung host)
runs when the server resumes — as a COMMIT in flight would. Use it for idempotent work.

BEGIN is sent as one simple-protocol statement, with ``SET LOCAL application_name`` when a label
is given: the session names what it serves (e.g. the request's route) without a round trip of its
own, and the name reverts at COMMIT or ROLLBACK.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

import asyncpg

from fasterdb.errors import DatabaseUnavailable, OutcomeUnknown
from fasterdb.pools.driver import DRIVER_ERRORS, terminate, translate
from fasterdb.pools.managed import ManagedPool

log = logging.getLogger("fasterdb.transactions")
T = TypeVar("T")
Isolation = Literal["read_committed", "repeatable_read", "serializable"]
ROLLBACK_TIMEOUT = 5.0  # a ROLLBACK that takes longer means the server is gone: terminate instead
_LEVELS = {"read_committed": "READ COMMITTED", "repeatable_read": "REPEATABLE READ", "serializable": "SERIALIZABLE"}
# SQLSTATE classes that, in answer to COMMIT, say the connection ended, not what became of the work.
_CONNECTION_CLASSES = ("08", "57")
MAX_LABEL = 63  # PostgreSQL keeps NAMEDATALEN - 1 bytes of application_name


class RetryTransaction(Exception):
    """The transaction lost a race (e.g. a concurrent insert of one of its keys): run it again."""


@dataclass
class Commit:
    """Where a transaction's COMMIT got to: the caller of a cut-off transaction asks ``unknown``."""

    started: bool = False
    done: bool = False

    @property
    def unknown(self) -> bool:
        """COMMIT was sent but its answer never arrived."""
        return self.started and not self.done


def quote_label(label: str) -> str:
    """``label`` as a safe SQL string literal of at most MAX_LABEL bytes (printable ASCII only)."""
    text = "".join(c if c.isascii() and c.isprintable() else "?" for c in label)[:MAX_LABEL]
    return "'" + text.replace("'", "''") + "'"


def begin_statement(isolation: Isolation, readonly: bool, label: str | None) -> str:
    """The BEGIN (and the label) sent in one round trip."""
    sql = f"BEGIN ISOLATION LEVEL {_LEVELS[isolation]}" + (" READ ONLY" if readonly else "")
    return sql + (f"; SET LOCAL application_name = {quote_label(label)}" if label else "")


@asynccontextmanager
async def transaction(
    pool: ManagedPool,
    *,
    timeout: float | None = None,
    isolation: Isolation = "read_committed",
    readonly: bool = False,
    internal: bool = False,
    label: str | None = None,
    after_commit: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    commit: Commit | None = None,
) -> AsyncIterator[asyncpg.Connection]:
    """Acquire (bounded), BEGIN; COMMIT when the block succeeds, ROLLBACK when it raises; release.

    Driver errors leave as our own errors (503 for unavailability, 500 otherwise; ``OutcomeUnknown``
    when COMMIT's answer was lost). ``internal``: the owner's own background work, counted apart from
    the application's acquires. ``after_commit`` runs on the connection once COMMIT succeeded.
    """
    state = commit if commit is not None else Commit()
    async with pool.acquire(timeout, internal=internal) as conn:
        try:
            await conn.execute(begin_statement(isolation, readonly, label))
        except (asyncio.CancelledError, TimeoutError):
            terminate(conn)  # cut off mid-BEGIN: releasing would wait on the server
            raise
        except DRIVER_ERRORS as exc:
            raise translate(exc, pool.name) from exc
        try:
            yield conn
        except (asyncio.CancelledError, TimeoutError):
            terminate(conn)  # the server may not answer a ROLLBACK; it rolls back on its own
            raise
        except BaseException as exc:
            await _rollback(conn)
            if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
                await _reconnect_read_only(conn, pool)
            if isinstance(exc, DRIVER_ERRORS):
                raise translate(exc, pool.name) from exc
            raise
        state.started = True
        try:
            await conn.execute("COMMIT")
        except (asyncio.CancelledError, *DRIVER_ERRORS) as exc:
            if (failed := _commit_failed(exc, conn, pool.name)) is exc:
                raise
            raise failed from exc
        state.done = True
        if after_commit is not None:
            await after_commit(conn)


@asynccontextmanager
async def statement(
    pool: ManagedPool,
    *,
    timeout: float | None = None,
    internal: bool = False,
    commit: Commit | None = None,
) -> AsyncIterator[asyncpg.Connection]:
    """Acquire (bounded) for work that is exactly one statement, run in its own implicit
    transaction; release. No BEGIN, no COMMIT: the statement commits when it succeeds.

    Its answer is therefore also its COMMIT's answer: a server's error means nothing was applied
    (our errors, as ``transaction``); an answer lost to the connection (lost, terminated, cut off by
    the deadline) leaves the outcome unknown (``OutcomeUnknown``). More than one statement in the
    block would commit each on its own: use ``transaction`` for that.
    """
    state = commit if commit is not None else Commit()
    async with pool.acquire(timeout, internal=internal) as conn:
        state.started = True  # from here on, whatever the block sends may commit
        try:
            yield conn
        except (asyncio.CancelledError, *DRIVER_ERRORS) as exc:
            if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
                await _reconnect_read_only(conn, pool)
            if (failed := _commit_failed(exc, conn, pool.name)) is exc:
                raise
            raise failed from exc
        state.done = True


def _commit_failed(exc: BaseException, conn: asyncpg.Connection, pool: str) -> BaseException:
    """What to raise when the statement that commits (COMMIT, or a one-statement transaction)
    failed with ``exc`` (``exc`` itself: raise it as it is). Cut off (cancelled, timed out) — the
    connection is terminated, the cancellation goes on, a timeout leaves the outcome unknown. The
    server answered with an error — rolled back, our error for it. The connection ended — the
    outcome is unknown."""
    if isinstance(exc, asyncio.CancelledError | TimeoutError):
        terminate(conn)
        return exc if isinstance(exc, asyncio.CancelledError) else OutcomeUnknown(pool)
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if isinstance(exc, asyncpg.PostgresError) and not sqlstate.startswith(_CONNECTION_CLASSES):
        return translate(exc, pool)
    return OutcomeUnknown(pool)


async def _reconnect_read_only(conn: asyncpg.Connection, pool: ManagedPool) -> None:
    """The server lost its primary role (25006): drop this connection and expire the pool's others,
    so the next connects (through a multi-host DSN) to the host that takes writes now."""
    terminate(conn)
    await pool.expire()
    log.warning("pool %s: the server is read-only (failover?); reconnecting", pool.name)


def _unavailable(category: str, pool: str, unknown: bool) -> DatabaseUnavailable:
    """The 503 of idempotent work that ran out of attempts; it says so when an attempt's answer was
    lost (that attempt may have applied: a retry with the same key tells)."""
    exc = DatabaseUnavailable(category, pool=pool)
    if unknown:
        exc.message += "; an attempt's answer was lost, so it may have been applied: retry with the same key"
    return exc


async def _rollback(conn: asyncpg.Connection) -> None:
    """ROLLBACK within ROLLBACK_TIMEOUT; a connection that cannot do it is terminated."""
    try:
        if conn.is_closed():
            return
    except asyncpg.InterfaceError:
        return  # released already (the proxy refuses it): nothing of this transaction to roll back
    try:
        async with asyncio.timeout(ROLLBACK_TIMEOUT):
            await conn.execute("ROLLBACK")
    except (TimeoutError, *DRIVER_ERRORS):
        terminate(conn)


async def run_transaction(
    pool: ManagedPool,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    attempts: int = 6,
    budget: float = 10.0,
    isolation: Isolation = "read_committed",
    internal: bool = False,
    idempotent: bool = False,
    label: str | None = None,
    after_commit: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    one_statement: bool = False,
) -> T:
    """Run ``work(conn)`` in a transaction; on a retryable failure run it again from the start.

    Retryable: serialization failure, deadlock, a connection lost or terminated before COMMIT, an
    unavailable database, a read-only server (failover), a lost race (``RetryTransaction``); a
    COMMIT whose answer was lost only when ``idempotent`` (else ``OutcomeUnknown``). Backoff doubles
    from 10 ms up to 200 ms with jitter; at most ``attempts`` tries, and all of it within
    ``budget`` seconds: each attempt (acquire included) may take only what is left of the budget,
    so the call returns in time whatever the database does.

    ``one_statement``: ``work`` sends exactly one statement, run without BEGIN and COMMIT
    (``statement``); ``isolation``, ``label`` and ``after_commit`` do not apply to it.
    """
    if one_statement and (isolation != "read_committed" or label is not None or after_commit is not None):
        raise ValueError("one_statement work runs in an implicit transaction: no isolation, label or after_commit")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    unknown = False  # an attempt's outcome is unknown (idempotent work only gets this far)
    for attempt in range(attempts):
        left = deadline - loop.time()
        commit = Commit()
        try:
            async with asyncio.timeout(left):
                scope = (
                    statement(pool, timeout=left, internal=internal, commit=commit)
                    if one_statement
                    else transaction(
                        pool,
                        timeout=left,
                        isolation=isolation,
                        internal=internal,
                        label=label,
                        after_commit=after_commit,
                        commit=commit,
                    )
                )
                async with scope as conn:
                    return await work(conn)
        except TimeoutError as exc:
            if commit.unknown and not idempotent:
                raise OutcomeUnknown(pool.name) from exc
            raise _unavailable("timeout", pool.name, unknown or commit.unknown) from exc
        except (DatabaseUnavailable, RetryTransaction, OutcomeUnknown) as exc:
            if isinstance(exc, OutcomeUnknown):
                if not idempotent:
                    raise
                unknown = True
            pause = min(0.01 * 2**attempt, 0.2) * random.uniform(0.5, 1.5)
            if attempt == attempts - 1 or loop.time() + pause >= deadline:
                if isinstance(exc, RetryTransaction):
                    raise _unavailable("conflicting concurrent transaction", pool.name, unknown) from exc
                if isinstance(exc, OutcomeUnknown):
                    raise _unavailable("connection lost", pool.name, unknown) from exc
                if unknown and isinstance(exc, DatabaseUnavailable):
                    raise _unavailable(exc.category, pool.name, unknown) from exc
                raise
            log.debug("retrying transaction on %s after %s", pool.name, exc)
            await asyncio.sleep(pause)
    raise RuntimeError("run_transaction: no attempt was made")  # attempts < 1
