"""Pools: the primary and one per replica, opened without needing a reachable database.

A connection pool (``fasterdb.pools.connections``) opens ``min_size`` connections when it is
created and fails if it cannot (with a ``min_size`` of 0 a probe connection takes their place).
So each ManagedPool creates its pool in a background task that retries with backoff, and an
acquire that finds no pool yet tries once itself (bounded by its timeout). The sidecar (and an
application) thus starts, and serves, while PostgreSQL is down. Once created, the pool reconnects
on acquire, so it recovers by itself when its server comes back.

Acquiring is in ``fasterdb.pools.acquire``; transactions and their retry policy in
``fasterdb.pools.transactions``; multi-host connects in ``fasterdb.pools.hosts``. (A little over
300 lines: one class, the pool's whole lifecycle, whose parts are modules of their own already.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from fasterdb.dsn import parse_dsn
from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.acquire import Acquire
from fasterdb.pools.connections import ConnectionPool
from fasterdb.pools.deadlines import Deadlines
from fasterdb.pools.driver import DRIVER_ERRORS, classify
from fasterdb.pools.hosts import connect_each_host
from fasterdb.pools.stats import PoolSnapshot, PoolStats

log = logging.getLogger("fasterdb.pools")

Role = Literal["primary", "replica"]
Connection = asyncpg.Connection  # re-exported for the domain layer


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
    # The monitor connection's server-side statement_timeout: its checks and catalog queries are
    # cut off by the health deadline on both sides, so the server never works on for nobody.
    monitor_statement_timeout: float = 30.0
    # Reset each session on release (asyncpg's RESET ALL, pg_advisory_unlock_all(), UNLISTEN *,
    # CLOSE ALL: one round trip): for pools that run code the owner does not control (the kit's,
    # an application's). Without it only an open transaction is rolled back: the sidecar's own
    # pools, which never leave session state behind (no SET, LISTEN, session-level advisory locks,
    # cursors or temporary tables; every lock is transaction-scoped).
    reset_session: bool = False
    # The server's client_connection_check_interval on pooled connections: a statement whose client
    # has gone (a request cut off by its deadline or a drain terminates its connection) is stopped
    # by the server within this time, instead of running on, waiting for a lock, and committing
    # for nobody — which an autocommit statement (``transactions.statement``) otherwise would.
    client_check_interval: float = 0.1


class ManagedPool:
    """One named connection pool with its role, lifecycle state, statistics and a check connection."""

    def __init__(self, name: str, role: Role, dsn: str, config: PoolConfig, *, owner: str = "fasterdb-sidecar") -> None:
        self.name = name
        self.owner = owner  # application_name prefix: who opened these connections
        self.role = role
        self.config = config
        self._dsn = dsn
        # The primary pool connects only to a host that takes writes (libpq's read-write), so a
        # multi-host DSN follows a failover; a DSN that names target_session_attrs itself wins.
        said = parse_dsn(dsn).target_session_attrs
        self.target_session_attrs = said or ("read-write" if role == "primary" else "any")
        # The connection pool once created (read on the hot path of every acquire, hence public).
        self.connections: ConnectionPool | None = None
        self._state: Literal["new", "opening", "open", "closed"] = "new"
        self._create_lock = asyncio.Lock()
        self._connector: asyncio.Task[None] | None = None
        self.last_connect_error: str | None = None
        # Whether the first connection attempt has finished, whatever its outcome (/health/startup).
        self.first_attempt_done = False
        self.stats = PoolStats()  # the application's acquires (requests), what /pools reports
        self.internal_stats = PoolStats()  # the sidecar's own background work (the job worker)
        self.deadlines = Deadlines()
        # The config's figures read per request, as plain attributes (a property is a call).
        self.max_size = config.max_size
        self.acquire_timeout = config.acquire_timeout
        self._check_conn: asyncpg.Connection | None = None
        self._check_lock = asyncio.Lock()
        # expire() calls so far: a pool or a check connection opened across one is replaced too.
        self._expiries = 0
        self._check_born = 0  # _expiries when the check connection was opened

    def __repr__(self) -> str:
        return f"<ManagedPool {self.name} role={self.role} state={self._state}>"

    @property
    def multi_host(self) -> bool:
        """Whether the DSN names several hosts (so a reconnect may reach another server)."""
        return len(parse_dsn(self._dsn).hosts) > 1

    @property
    def application_name(self) -> str:
        """What PostgreSQL shows in pg_stat_activity for this pool's connections."""
        return f"{self.owner}/{self.name}"[:63]

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._state == "closed"

    async def open(self) -> None:
        """Start creating the connection pool in the background; returns at once, never fails on the DB."""
        if self._state != "new":
            raise RuntimeError(f"pool {self.name} cannot be opened in state {self._state}")
        self._state = "opening"
        self.deadlines.use_loop(asyncio.get_running_loop())
        self._connector = asyncio.create_task(self._connect_loop(), name=f"connect-{self.name}")

    async def _connect_loop(self) -> None:
        delay = 0.25
        while self._state == "opening":
            try:
                await self.ensure_created(self.config.connect_timeout)
                return
            except DatabaseUnavailable:
                pass  # recorded in last_connect_error; the pool health logs state changes
            finally:
                self.first_attempt_done = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.retry_max_delay)

    def acquire(self, timeout: float | None = None, *, internal: bool = False) -> Acquire:
        """``async with pool.acquire(t) as conn``: waiting (queue + connect) is bounded by ``t``.

        ``internal``: the sidecar's own background work, counted apart from the application's.
        """
        return Acquire(
            self,
            self.acquire_timeout if timeout is None else timeout,
            self.internal_stats if internal else self.stats,
        )

    async def ensure_created(self, timeout: float) -> ConnectionPool:
        """The connection pool, creating it now (one attempt, bounded by ``timeout``) when missing."""
        if self.connections is not None:
            return self.connections
        if self._state == "closed":
            raise DatabaseUnavailable("pool closed", pool=self.name)
        try:
            async with asyncio.timeout(timeout):
                async with self._create_lock:
                    if self.connections is None and self._state == "opening":
                        expiries = self._expiries
                        pool = await self._create()
                        if self._expiries != expiries:  # expire() or replace_dsn() during the connects
                            pool.expire()
                        self.connections = pool
                        if self._state == "opening":  # not closed meanwhile (close() takes the pool)
                            self._state = "open"
                        self.last_connect_error = None
        except DRIVER_ERRORS as exc:
            self.last_connect_error = classify(exc)
            raise DatabaseUnavailable(self.last_connect_error, pool=self.name) from exc
        if self.connections is None:
            raise DatabaseUnavailable("pool closed", pool=self.name)
        return self.connections

    async def connect(self, *args: Any, **kwargs: Any) -> asyncpg.Connection:
        """asyncpg.connect with this pool's DSN, each host of a multi-host DSN in turn (``hosts``)."""
        kwargs.setdefault("target_session_attrs", self.target_session_attrs)
        return await connect_each_host(parse_dsn(self._dsn).hosts, *args, **kwargs)

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            "dsn": self._dsn,
            "command_timeout": self.config.command_timeout,
            "timeout": self.config.connect_timeout,
            "target_session_attrs": self.target_session_attrs,
        }

    async def _create(self) -> ConnectionPool:
        if self.config.min_size == 0:
            # the pool opens no connection then: one now, closed at once, is what
            # says "the database was reachable" (start-up, readiness) without keeping anything open.
            probe = await self.connect(
                **self._connect_kwargs(), server_settings={"application_name": f"{self.application_name}/probe"}
            )
            await probe.close(timeout=self.config.connect_timeout)
        pool = ConnectionPool(
            self._connect_pooled,
            name=self.name,
            min_size=self.config.min_size,
            max_size=self.config.max_size,
            max_inactive=self.config.max_inactive_connection_lifetime,
            reset_session=self.config.reset_session,
        )
        await pool.fill()
        return pool

    async def _connect_pooled(self) -> asyncpg.Connection:
        """One of the pool's connections, with the DSN and settings of now (``replace_dsn``)."""
        return await self.connect(**self._pooled_connect_kwargs())

    def _pooled_connect_kwargs(self) -> dict[str, Any]:
        statement_ms = int(self.config.command_timeout * 1000)
        return {
            **self._connect_kwargs(),
            "server_settings": {
                "application_name": self.application_name,
                "statement_timeout": str(statement_ms),
                "idle_in_transaction_session_timeout": str(max(statement_ms, 60_000)),
                "client_connection_check_interval": str(max(1, int(self.config.client_check_interval * 1000))),
            },
        }

    @asynccontextmanager
    async def check_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A dedicated connection for health, lag and catalog checks, outside the pool.

        Checks must not queue behind application traffic: a saturated pool (visible in /pools as
        ``waiting``) must not make a healthy database look down and take every pod out of service.
        One check at a time uses it; a check that fails or is cut off by its deadline drops it, and
        the next one reconnects.
        """
        async with self._check_lock:
            conn = self._check_conn
            if conn is None or conn.is_closed():
                if self._state == "closed":
                    raise DatabaseUnavailable("pool closed", pool=self.name)
                born = self._expiries
                conn = await self.connect(
                    **self._connect_kwargs(),
                    server_settings={
                        # "/monitor": the name operators already filter on in pg_stat_activity.
                        "application_name": f"{self.application_name}/monitor",
                        "statement_timeout": str(max(1, int(self.config.monitor_statement_timeout * 1000))),
                    },
                )
                self._check_conn, self._check_born = conn, born
            try:
                yield conn
            except BaseException:
                self._check_conn = None
                conn.terminate()
                raise
            if self._check_born != self._expiries:  # expired while connecting or in use: not kept
                self._check_conn = None
                conn.terminate()

    async def replace_dsn(self, dsn: str) -> None:
        """Connect with ``dsn`` from now on (rotated credentials, another host): new connections use it,
        the pool's connections are replaced as they are next used, the check connection at once."""
        self._dsn = dsn
        said = parse_dsn(dsn).target_session_attrs
        self.target_session_attrs = said or ("read-write" if self.role == "primary" else "any")
        await self.expire()

    async def expire(self) -> None:
        """Replace every connection on its next use (the server they hold lost its role); one
        being opened now, the pool being created, and a check connection in use too."""
        self._expiries += 1
        self.drop_check_connection()
        if self.connections is not None:
            self.connections.expire()

    def drop_check_connection(self) -> None:
        """Close the check connection; the next check connects afresh (to the current primary).
        One in use is left to its check (which closes it after use when an expire() came since)."""
        if self._check_conn is not None and not self._check_lock.locked():
            self._check_conn.terminate()
            self._check_conn = None

    async def close(self, timeout: float = 10.0) -> None:
        """Close gracefully within ``timeout`` seconds, then terminate what is left."""
        previous, self._state = self._state, "closed"
        if self._check_conn is not None:
            self._check_conn.terminate()
            self._check_conn = None
        if self._connector is not None and not self._connector.done():
            self._connector.cancel()
            await asyncio.gather(self._connector, return_exceptions=True)
        async with self._create_lock:
            pool, self.connections = self.connections, None
        if pool is None or previous == "closed":
            return
        try:
            await asyncio.wait_for(pool.close(), timeout)
        except (TimeoutError, Exception) as exc:
            log.warning("pool %s did not close in time (%s); terminating", self.name, classify(exc))
            pool.terminate()

    @property
    def ready_for_acquire(self) -> bool:
        """Whether the connection pool exists (the database was reachable once since start)."""
        return self.connections is not None

    @property
    def held(self) -> int:
        """Connections acquired and not yet released (counting those being opened for an acquire)."""
        pool = self.connections
        return 0 if pool is None else pool.size - len(pool.idle)

    def sizes(self) -> tuple[int, int]:
        """(connections open or opening, of which idle)."""
        pool = self.connections
        if pool is None:
            return 0, 0
        return pool.size, len(pool.idle)

    def snapshot(self) -> PoolSnapshot:
        """Sizes and the application's acquire statistics, now."""
        size, idle = self.sizes()
        s = self.stats
        return PoolSnapshot(
            min_size=self.config.min_size,
            max_size=self.config.max_size,
            size=size,
            idle=idle,
            waiting=s.waiting,
            acquired_total=s.acquired_total,
            acquire_timeouts_total=s.acquire_timeouts_total,
            acquire_errors_total=s.acquire_errors_total,
            acquire_wait_ms=s.recent_wait_ms(),
        )
