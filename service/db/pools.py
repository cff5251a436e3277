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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from pydantic import SecretStr

from service.db.errors import classify, translate
from service.errors import DatabaseUnavailable

log = logging.getLogger("fasterdb.pools")

Role = Literal["primary", "replica"]
Connection = asyncpg.Connection  # re-exported for the domain layer
_DRIVER_ERRORS = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError, TimeoutError)


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

    def __repr__(self) -> str:
        return f"<ManagedPool {self.name} role={self.role} state={self._state}>"

    @property
    def application_name(self) -> str:
        """What PostgreSQL shows in pg_stat_activity for this pool's connections."""
        return f"fasterdb-sidecar/{self.name}"

    @property
    def state(self) -> str:
        """new, opening (no asyncpg pool yet: the database was not reachable), open or closed."""
        return self._state

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

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A connection for the block; waiting (queue + connect) is bounded by ``timeout``."""
        wait = self.config.acquire_timeout if timeout is None else timeout
        try:
            # asyncio.timeout rather than acquire(timeout=): asyncpg's wait_for costs a task per call.
            async with asyncio.timeout(wait):
                pool = await self._ensure_pool(wait)
                conn = await pool.acquire()
        except _DRIVER_ERRORS as exc:
            raise DatabaseUnavailable(classify(exc), pool=self.name) from exc
        try:
            yield conn
        finally:
            # asyncpg shields release from cancellation; a broken connection is discarded there.
            await pool.release(conn)

    def stats(self) -> dict[str, Any]:
        """asyncpg's own size figures (instrumentation adds waiting and wait times)."""
        pool = self._pool
        if pool is None:
            return {"size": 0, "idle": 0}
        return {"size": pool.get_size(), "idle": pool.get_idle_size()}


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

    def get(self, name: str) -> ManagedPool | None:
        """The pool called ``name``, or None."""
        return next((p for p in self if p.name == name), None)

    async def open(self) -> None:
        """Open every pool (no connection is made here)."""
        for pool in self:
            await pool.open()

    async def close(self, timeout: float = 10.0) -> None:
        """Close every pool concurrently, each within ``timeout``."""
        await asyncio.gather(*(p.close(timeout) for p in self), return_exceptions=True)
