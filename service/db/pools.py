"""Pools: the primary and one per replica, opened without needing a reachable database.

asyncpg connects ``init_size`` (which must be at least ``min_size``) connections when a pool is
created and fails if it cannot. So each ManagedPool creates its asyncpg pool in a background
task that retries with backoff, and an acquire that finds no pool yet tries once itself (bounded
by its timeout). The sidecar thus starts, and serves /health/live, while PostgreSQL is down.
Once created, asyncpg keeps the ``min_size`` floor and reconnects lazily on acquire, so the pool
recovers by itself when its server comes back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import asyncpg
from pydantic import SecretStr

from service.db.deadlines import Deadlines
from service.db.errors import classify, translate
from service.db.instrumentation import PoolStats
from service.errors import DatabaseUnavailable

log = logging.getLogger("fasterdb.pools")

Role = Literal["primary", "replica"]
Connection = asyncpg.Connection  # re-exported for the domain layer
# InternalClientError: asyncpg's protocol state machine giving up on a connection that broke
# mid-operation (e.g. a backend terminated during ROLLBACK) — a lost connection for our purposes.
_DRIVER_ERRORS = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError)
T = TypeVar("T")


class RetryTransaction(Exception):
    """The transaction lost a race (e.g. a concurrent insert of one of its keys): run it again."""


@dataclass(frozen=True)
class PoolConfig:
    """Connection and sizing parameters shared by every pool."""

    min_size: int = 1
    max_size: int = 10
    command_timeout: float = 30.0
    connect_timeout: float = 5.0
    acquire_timeout: float = 5.0
    max_inactive_connection_lifetime: float = 300.0
    retry_max_delay: float = 5.0


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (a full round trip per release).

    The sidecar never leaves session state behind — no SET, LISTEN, session-level advisory locks,
    cursors or temporary tables; every lock is transaction-scoped — so there is nothing to reset.
    asyncpg still rolls back an open transaction before calling this.
    """


class ManagedPool:
    """One named asyncpg pool with its role, lifecycle state and a bounded acquire."""

    def __init__(self, name: str, role: Role, dsn: SecretStr, config: PoolConfig) -> None:
        self.name = name
        self.role = role
        self.config = config
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._state: Literal["new", "opening", "open", "closed"] = "new"
        self._create_lock = asyncio.Lock()
        self._connector: asyncio.Task[None] | None = None
        self.last_connect_error: str | None = None
        self.instruments = PoolStats()
        self.deadlines = Deadlines()
        self._monitor_conn: asyncpg.Connection | None = None
        self._monitor_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<ManagedPool {self.name} role={self.role} state={self._state}>"

    @property
    def application_name(self) -> str:
        """What PostgreSQL shows in pg_stat_activity for this pool's connections."""
        return f"fasterdb-sidecar/{self.name}"

    async def open(self) -> None:
        """Start creating the asyncpg pool in the background; returns at once, never fails on the DB."""
        if self._state != "new":
            raise RuntimeError(f"pool {self.name} cannot be opened in state {self._state}")
        self._state = "opening"
        self._connector = asyncio.create_task(self._connect_loop(), name=f"connect-{self.name}")

    async def _connect_loop(self) -> None:
        delay = 0.25
        while self._state == "opening":
            try:
                await self._ensure_pool(self.config.connect_timeout)
                return
            except DatabaseUnavailable:
                pass  # recorded in last_connect_error; the monitor logs state changes
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.retry_max_delay)

    async def ensure_created(self, timeout: float) -> None:
        """Create the asyncpg pool now if it does not exist yet (one attempt within ``timeout``)."""
        await self._ensure_pool(timeout)

    @asynccontextmanager
    async def monitor_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A dedicated connection for health and lag checks, outside the pool.

        Checks must not queue behind application traffic: a saturated pool (visible in /pools as
        ``waiting``) must not make a healthy database look down and take every pod out of service.
        One check at a time uses it; a check that fails or is cut off by its deadline drops it, and
        the next one reconnects.
        """
        async with self._monitor_lock:
            conn = self._monitor_conn
            if conn is None or conn.is_closed():
                if self._state == "closed":
                    raise DatabaseUnavailable("pool closed", pool=self.name)
                conn = await asyncpg.connect(
                    dsn=self._dsn.get_secret_value(),
                    timeout=self.config.connect_timeout,
                    command_timeout=self.config.command_timeout,
                    server_settings={
                        "application_name": f"{self.application_name}/monitor",
                        "statement_timeout": str(int(self.config.command_timeout * 1000)),
                    },
                )
                self._monitor_conn = conn
            try:
                yield conn
            except BaseException:
                self._monitor_conn = None
                conn.terminate()
                raise

    async def _ensure_pool(self, timeout: float) -> asyncpg.Pool:
        """The asyncpg pool, creating it now (one attempt, bounded by ``timeout``) when missing."""
        if self._pool is not None:
            return self._pool
        if self._state == "closed":
            raise DatabaseUnavailable("pool closed", pool=self.name)
        try:
            async with asyncio.timeout(timeout):
                async with self._create_lock:
                    if self._pool is None and self._state == "opening":
                        self._pool = await self._create()
                        self._state = "open"
                        self.last_connect_error = None
        except _DRIVER_ERRORS as exc:
            self.last_connect_error = classify(exc)
            raise DatabaseUnavailable(self.last_connect_error, pool=self.name) from exc
        if self._pool is None:
            raise DatabaseUnavailable("pool closed", pool=self.name)
        return self._pool

    async def _create(self) -> asyncpg.Pool:
        statement_ms = int(self.config.command_timeout * 1000)
        return await asyncpg.create_pool(
            dsn=self._dsn.get_secret_value(),
            init_size=self.config.min_size,
            min_size=self.config.min_size,
            max_size=self.config.max_size,
            max_inactive_connection_lifetime=self.config.max_inactive_connection_lifetime,
            command_timeout=self.config.command_timeout,
            timeout=self.config.connect_timeout,
            server_settings={
                "application_name": self.application_name,
                "statement_timeout": str(statement_ms),
                "idle_in_transaction_session_timeout": str(max(statement_ms, 60_000)),
            },
            reset=_keep_session,
        )

    async def close(self, timeout: float = 10.0) -> None:
        """Close gracefully within ``timeout`` seconds, then terminate what is left."""
        previous, self._state = self._state, "closed"
        if self._monitor_conn is not None:
            self._monitor_conn.terminate()
            self._monitor_conn = None
        if self._connector is not None and not self._connector.done():
            self._connector.cancel()
            await asyncio.gather(self._connector, return_exceptions=True)
        async with self._create_lock:
            pool, self._pool = self._pool, None
        if pool is None or previous == "closed":
            return
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except (TimeoutError, Exception) as exc:
            log.warning("pool %s did not close in time (%s); terminating", self.name, classify(exc))
            pool.terminate()

    def acquire(self, timeout: float | None = None) -> Acquire:
        """``async with pool.acquire(t) as conn``: waiting (queue + connect) is bounded by ``t``."""
        return Acquire(self, self.config.acquire_timeout if timeout is None else timeout)

    @property
    def ready_for_acquire(self) -> bool:
        """Whether an asyncpg pool exists (the database was reachable once since start)."""
        return self._pool is not None

    def sizes(self) -> tuple[int, int]:
        """(connections open, of which idle), from asyncpg."""
        pool = self._pool
        if pool is None:
            return 0, 0
        return pool.get_size(), pool.get_idle_size()

    def stats(self) -> dict[str, Any]:
        """Everything /pools reports about this pool except readiness."""
        size, idle = self.sizes()
        s = self.instruments
        return {
            "min_size": self.config.min_size,
            "max_size": self.config.max_size,
            "size": size,
            "idle": idle,
            "in_use": s.in_use,
            "waiting": s.waiting,
            "acquired_total": s.acquired_total,
            "acquire_timeouts_total": s.acquire_timeouts_total,
            "acquire_errors_total": s.acquire_errors_total,
            "acquire_wait_ms": s.recent_wait_ms(),
        }


class Acquire:
    """The instrumented acquire: counts waiters, in-use, waits, timeouts; always releases.

    A class rather than @asynccontextmanager: this is the hot path of every query.
    """

    __slots__ = ("_managed", "_timeout", "_pool", "_conn")

    def __init__(self, managed: ManagedPool, timeout: float) -> None:
        self._managed = managed
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        managed, stats = self._managed, self._managed.instruments
        stats.waiting += 1
        started = time.monotonic()
        try:
            pool = managed._pool
            if pool is None:  # never created (database down at start): one bounded attempt now
                pool = await managed._ensure_pool(self._timeout)
            self._pool = pool
            task = asyncio.current_task()
            assert task is not None
            deadlines = managed.deadlines
            deadlines.enter(task, started + self._timeout)
            try:
                self._conn = await pool.acquire()
            except asyncio.CancelledError:
                if deadlines.expired(task):
                    raise TimeoutError from None
                raise
            finally:
                deadlines.leave(task)
        except TimeoutError as exc:
            stats.acquire_timeouts_total += 1
            raise DatabaseUnavailable("timeout", pool=managed.name) from exc
        except _DRIVER_ERRORS as exc:
            stats.acquire_errors_total += 1
            raise DatabaseUnavailable(classify(exc), pool=managed.name) from exc
        except DatabaseUnavailable as exc:
            if exc.category == "timeout":
                stats.acquire_timeouts_total += 1
            else:
                stats.acquire_errors_total += 1
            raise
        finally:
            stats.waiting -= 1
            now = time.monotonic()
            stats.observe_wait(now - started, now)
        stats.acquired_total += 1
        stats.in_use += 1
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._pool is not None and self._conn is not None
        try:
            # asyncpg shields release from cancellation; a broken connection is discarded there.
            await self._pool.release(self._conn)
        finally:
            self._managed.instruments.in_use -= 1
            self._conn = None


@asynccontextmanager
async def transaction(
    pool: ManagedPool,
    *,
    timeout: float | None = None,
    isolation: Literal["read_committed", "repeatable_read", "serializable"] = "read_committed",
    readonly: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """Acquire (bounded), BEGIN; COMMIT when the block succeeds, ROLLBACK when it raises; release.

    This is the request-scoped database access of the sidecar: FasterAPI 0.2.14 does not run the
    code after ``yield`` in dependencies, so handlers use this explicitly instead. Driver errors
    leave as our own errors (503 for unavailability, 500 otherwise).
    """
    async with pool.acquire(timeout) as conn:
        try:
            async with conn.transaction(isolation=isolation, readonly=readonly):
                yield conn
        except _DRIVER_ERRORS as exc:
            raise translate(exc, pool.name) from exc


class Databases:
    """The primary pool and the replica pools, opened and closed together."""

    def __init__(self, primary: ManagedPool, replicas: list[ManagedPool]) -> None:
        self.primary = primary
        self.replicas = replicas

    def __iter__(self) -> Iterator[ManagedPool]:
        yield self.primary
        yield from self.replicas

    async def open(self) -> None:
        """Open every pool (no connection is made here)."""
        for pool in self:
            await pool.open()

    async def close(self, timeout: float = 10.0) -> None:
        """Close every pool concurrently, each within ``timeout``."""
        await asyncio.gather(*(p.close(timeout) for p in self), return_exceptions=True)


async def run_transaction(
    pool: ManagedPool,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    attempts: int = 6,
    budget: float = 10.0,
    isolation: Literal["read_committed", "repeatable_read", "serializable"] = "read_committed",
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
            async with transaction(pool, isolation=isolation) as conn:
                return await work(conn)
        except (DatabaseUnavailable, RetryTransaction) as exc:
            pause = min(0.01 * 2**attempt, 0.2) * random.uniform(0.5, 1.5)
            if attempt == attempts - 1 or loop.time() + pause > deadline:
                if isinstance(exc, RetryTransaction):
                    raise DatabaseUnavailable("conflicting concurrent transaction", pool=pool.name) from exc
                raise
            log.debug("retrying transaction on %s after %s", pool.name, exc)
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
