"""``Database``: the application's primary and replica pools, used the way production needs.

    db = Database.from_env()
    db.install(app)

    async with db.write() as conn:     # a transaction on the primary; its position becomes a token
        ...
    async with db.read() as conn:      # a replica within the staleness budget, or the primary
        ...
    await db.run(work, isolation="serializable")   # retried on serialization failures, deadlocks

Every acquire has a deadline (past it: JSON 503 with Retry-After), every connection is released on
every path (an exception, a cancellation, a client that went away), and no driver message reaches
a client. See the README, "Using it from your application".
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import msgspec

from fasterdb.contract import AppReport, PoolBody, WaitMs
from fasterdb.errors import DatabaseUnavailable, ServiceError
from fasterdb.lsn import parse_lsn
from fasterdb.pools.acquire import Acquire
from fasterdb.pools.driver import DRIVER_ERRORS
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb.pools.transactions import Isolation, _terminate, run_transaction, transaction
from fasterdb.read_after import ReadAfter
from fasterdb.routing import PRIMARY, Budget, Router
from fasterdb.settings import KitSettings
from fasterdb.sidecar import SidecarLink, View
from fasterdb.web import RequestState, current, install

log = logging.getLogger("fasterdb.kit")
T = TypeVar("T")
# Failures during which a write waits for a writable primary (a switchover) instead of failing.
SWITCHOVER = frozenset(
    {
        "not primary",
        "connection refused",
        "connection lost",
        "connection terminated",
        "database starting up or shutting down",
    }
)
POSITION_SQL = "SELECT pg_current_wal_insert_lsn()::text"  # at or past the end of a commit made before
CATCH_UP_POLL = 0.01  # seconds between a read-after replica's replay checks
CATCH_UP_GRACE = 0.25  # how long the last replay check may run past the wait before the replica counts as hung
COUNTED = ("read_after:waited", "read_after:fallback", "read:replica_error", "write_holds")


class ReadsRejected(ServiceError):
    """No replica is within the read's budget and the primary already takes its share of reads."""

    status = 503
    code = "replicas_lagging"


class Database:
    """The application's pools, read routing, read-after tokens and transactions."""

    def __init__(self, settings: KitSettings) -> None:
        self.settings = settings
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        owner = f"{settings.app_name}@{socket.gethostname()}"
        config = PoolConfig(
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.command_timeout,
            connect_timeout=settings.connect_timeout,
            acquire_timeout=settings.acquire_timeout,
            reset_session=True,  # the application's code may SET, LISTEN or lock for the session
        )
        self.owner = owner
        self.primary = ManagedPool(PRIMARY, "primary", settings.primary_dsn, config, owner=owner)
        self.replicas = {
            name: ManagedPool(name, "replica", dsn, config, owner=owner) for name, dsn in settings.replica_dsns
        }
        self.router = Router(
            list(self.replicas),
            Budget(settings.read_max_lag_seconds, settings.read_max_lag_bytes),
            spill_max_share=settings.spill_max_share,
            policy=settings.spill_policy,
            knowledge_max_age=settings.knowledge_max_age,
        )
        self.tokens = ReadAfter(settings.read_after_key)
        self.read_keys = {name: f"reads:{name}" for name in [PRIMARY, *self.replicas]}  # counter keys, once
        self.pools_by_name = {PRIMARY: self.primary, **self.replicas}
        # The kit's figures beside the router's (reported to the sidecar), each at 0 from the start.
        self.counts: Counter[str] = Counter(dict.fromkeys([*self.read_keys.values(), *COUNTED], 0))
        self.link = (
            SidecarLink(settings.sidecar_url, settings.sidecar_interval, self._observe, self.report)
            if settings.sidecar_url
            else None
        )
        self._primary_error: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Database:
        """A Database from FASTERDB_* (``fasterdb.settings``); ConfigError with one line on a bad value."""
        return cls(KitSettings.from_env(environ))

    def install(self, app: Any) -> None:
        """Open at the application's startup, close at its shutdown; request context and errors."""
        install(app, start=self.open, stop=self.close, tokens=self.tokens)

    def pools(self) -> list[ManagedPool]:
        """The primary pool, then the replica pools."""
        return [self.primary, *self.replicas.values()]

    async def open(self) -> None:
        """Start connecting in the background (never waits for the database) and asking the sidecar."""
        if not self.tokens.shared:
            log.warning(
                "FASTERDB_READ_AFTER_KEY is not set: read-after tokens are valid in this process only "
                "(set one key for all the application's pods)"
            )
        for pool in self.pools():
            await pool.open()
        if self.link is not None:
            self.link.start()

    async def close(self) -> None:
        """Stop asking the sidecar; close every pool (what does not close in time is terminated)."""
        if self.link is not None:
            await self.link.stop()
        await asyncio.gather(*(pool.close(5.0) for pool in self.pools()), return_exceptions=True)

    async def _observe(self, view: View) -> None:
        self.router.observe(view)
        if view.primary_error == "not primary" and self._primary_error != "not primary":
            # The sidecar saw the primary lose its role: new connections go (multi-host DSN,
            # target_session_attrs=read-write) to the host that takes writes now.
            log.warning("the sidecar reports the primary is not primary any more; reconnecting")
            await self.primary.expire()
        self._primary_error = view.primary_error

    # -- reads ----------------------------------------------------------------------------------

    def read(
        self, *, max_lag_seconds: float | None = None, max_lag_bytes: int | None = None, timeout: float | None = None
    ) -> Read:
        """``async with db.read() as conn``: a replica within the budget (default FASTERDB_READ_MAX_LAG_*),
        or the primary.

        A request carrying a read-after token is answered by a server that has replayed its
        position (a replica, after a bounded wait, else the primary).
        """
        budget = None
        if max_lag_seconds is not None or max_lag_bytes is not None:
            default = self.router.default
            budget = Budget(
                default.seconds if max_lag_seconds is None else max_lag_seconds,
                default.bytes if max_lag_bytes is None else max_lag_bytes,
            )
        return Read(self, budget, timeout)

    async def caught_up(self, pool: ManagedPool, position: int, timeout: float | None) -> Acquire | None:
        """An acquired connection to ``pool`` once its server has replayed ``position`` (within the
        wait), else None."""
        acquire = pool.acquire(timeout)
        try:
            conn = await acquire.__aenter__()
        except DatabaseUnavailable as exc:
            log.debug("read-after wait on %s failed (%s); reading from the primary", pool.name, exc.category)
            return None
        try:
            wait = self.settings.read_after_wait
            deadline = time.monotonic() + wait
            async with asyncio.timeout(wait + CATCH_UP_GRACE):  # a replica that does not answer (hung)
                while True:
                    # asyncpg's pg_lsn codec takes the byte position (an int), not its text
                    if await conn.fetchval("SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", position):
                        return acquire
                    if time.monotonic() + CATCH_UP_POLL > deadline:
                        break
                    await asyncio.sleep(CATCH_UP_POLL)
        except TimeoutError:
            log.debug("read-after wait on %s: no answer in time; reading from the primary", pool.name)
            _terminate(conn)  # releasing would wait for asyncpg's cancel request to a server that may be hung
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            log.debug("read-after wait on %s failed (%s); reading from the primary", pool.name, type(exc).__name__)
        except BaseException:
            await acquire.__aexit__(None, None, None)
            raise
        await acquire.__aexit__(None, None, None)
        return None

    # -- writes and transactions ----------------------------------------------------------------

    def write(self, *, timeout: float | None = None) -> Any:
        """A read-write transaction on the primary (``transaction()`` with its defaults)."""
        return self.transaction(timeout=timeout)

    @asynccontextmanager
    async def transaction(
        self, *, isolation: Isolation = "read_committed", readonly: bool = False, timeout: float | None = None
    ) -> AsyncIterator[asyncpg.Connection]:
        """A transaction on the primary: COMMIT when the block succeeds, ROLLBACK when it raises.

        During a switchover (the primary refuses connections or writes) a new transaction waits up
        to FASTERDB_WRITE_HOLD_SECONDS for a writable primary instead of failing at once.
        """
        state = current()
        deadline = time.monotonic() + self.settings.write_hold_seconds
        held = False
        try:
            async with AsyncExitStack() as stack:
                while True:
                    try:
                        conn = await stack.enter_async_context(
                            transaction(
                                self.primary,
                                timeout=timeout,
                                isolation=isolation,
                                readonly=readonly,
                                label=self._label(state),
                                after_commit=self._position_recorder(state) if not readonly else None,
                            )
                        )
                        break
                    except DatabaseUnavailable as exc:
                        if exc.category not in SWITCHOVER or time.monotonic() + 0.1 > deadline:
                            raise
                        if not held:
                            held = True
                            self.counts["write_holds"] += 1
                        await asyncio.sleep(0.1)
                yield conn
        except TimeoutError as exc:  # FASTERDB_COMMAND_TIMEOUT: BEGIN or a statement of the block cut off
            raise DatabaseUnavailable("timeout", pool=self.primary.name) from exc

    async def run(
        self,
        work: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        isolation: Isolation = "read_committed",
        budget: float | None = None,
        idempotent: bool = False,
    ) -> T:
        """``work(conn)`` in a transaction on the primary, run again from the start after a
        serialization failure, a deadlock, a lost connection or a switchover — all within ``budget``
        (default FASTERDB_TRANSACTION_BUDGET). A COMMIT whose answer was lost is retried only when
        ``idempotent``; otherwise it raises ``OutcomeUnknown`` (503 ``outcome_unknown``)."""
        state = current()
        return await run_transaction(
            self.primary,
            work,
            budget=self.settings.transaction_budget if budget is None else budget,
            isolation=isolation,
            idempotent=idempotent,
            label=self._label(state),
            after_commit=self._position_recorder(state),
            attempts=20,
        )

    def _label(self, state: RequestState | None) -> str:
        return f"{self.owner} {state.route}" if state is not None and state.route else self.owner

    def _position_recorder(self, state: RequestState | None) -> Callable[[asyncpg.Connection], Awaitable[None]] | None:
        if state is None:
            return None

        async def record(conn: asyncpg.Connection) -> None:
            try:
                text = await conn.fetchval(POSITION_SQL)
            except DRIVER_ERRORS as exc:
                # COMMIT succeeded: only its position was lost with the connection. Any later
                # position will do, so another connection of the primary pool is asked; the
                # committed write never fails here (a 503 would invite a retry: a second write).
                try:
                    conn.terminate()  # cut off on a server that may not answer: do not wait on it
                except asyncpg.InterfaceError:
                    pass  # lost and released back to the pool by asyncpg already
                try:
                    async with self.primary.acquire() as other:
                        text = await other.fetchval(POSITION_SQL)
                except (DatabaseUnavailable, *DRIVER_ERRORS) as again:
                    log.warning(
                        "a committed write's WAL position is unknown (%s, then %s): its response carries no "
                        "read-after token",
                        type(exc).__name__,
                        type(again).__name__,
                    )
                    return
            position = parse_lsn(text)
            if position is not None:
                state.write_position = max(position, state.write_position or 0)

        return record

    # -- what the sidecar shows -----------------------------------------------------------------

    def report(self) -> bytes:
        """This process's pools and routing figures, as ``POST /pools/report`` takes them."""
        pools = []
        for pool in self.pools():
            s = pool.snapshot()
            w = s.acquire_wait_ms
            pools.append(
                PoolBody(
                    name=pool.name,
                    role=pool.role,
                    ready=pool.ready_for_acquire and pool.last_connect_error is None,
                    error=pool.last_connect_error,
                    min_size=s.min_size,
                    max_size=s.max_size,
                    size=s.size,
                    idle=s.idle,
                    in_use=s.in_use,
                    waiting=s.waiting,
                    acquired_total=s.acquired_total,
                    acquire_timeouts_total=s.acquire_timeouts_total,
                    acquire_errors_total=s.acquire_errors_total,
                    acquire_wait_ms=WaitMs(w.p50, w.p99, w.max),
                    source="app",
                )
            )
        counters = dict(self.router.counts) | dict(self.counts)
        interval = self.settings.sidecar_interval
        return msgspec.json.encode(AppReport(self.settings.app_name, self.instance, interval, pools, counters))


class Read:
    """``async with db.read() as conn``: routes, acquires (always released), names the server.

    A class rather than ``@asynccontextmanager``: it is on the path of every read.
    """

    __slots__ = ("_db", "_budget", "_timeout", "_acquire", "_target")

    def __init__(self, db: Database, budget: Budget | None, timeout: float | None) -> None:
        self._db = db
        self._budget = budget
        self._timeout = timeout
        self._acquire: Acquire | None = None
        self._target = PRIMARY

    async def __aenter__(self) -> asyncpg.Connection:
        db = self._db
        state = current()
        position = None
        if state is not None:  # the token the request carried, or this request's own write: the later
            token, written = state.read_after, state.write_position
            position = written if token is None else token if written is None else max(token, written)
        choice = db.router.choose(self._budget, position)
        target = choice.target
        if choice.reason == "rejected":
            raise ReadsRejected(
                "no replica is within this read's staleness budget and the primary already serves its share"
            )
        acquire = None
        if choice.wait_on is not None and position is not None:
            acquire = await db.caught_up(db.replicas[choice.wait_on], position, self._timeout)
            target = choice.wait_on if acquire is not None else PRIMARY
            db.counts["read_after:waited" if acquire is not None else "read_after:fallback"] += 1
        if acquire is None:
            acquire = db.pools_by_name[target].acquire(self._timeout)
            try:
                conn = await acquire.__aenter__()
            except DatabaseUnavailable as exc:
                if target == PRIMARY:
                    raise
                log.debug("replica %s unavailable (%s); reading from the primary", target, exc.category)
                db.counts["read:replica_error"] += 1
                target = PRIMARY
                acquire = db.primary.acquire(self._timeout)
                conn = await acquire.__aenter__()
        else:
            conn = acquire.connection
        self._acquire, self._target = acquire, target
        db.counts[db.read_keys[target]] += 1
        if state is not None:
            state.served_by = target
            if choice.reason == "stale":
                state.stale_seconds = db.router.lag_seconds(target)
        return conn

    def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Awaitable[None]:
        # Not a coroutine itself: the common exit is the release's own awaitable (one coroutine
        # frame less on the path of every read; ``async with`` awaits whatever this returns).
        acquire, self._acquire = self._acquire, None
        if acquire is None:
            return _nothing_to_release()
        if exc is None:
            return acquire.__aexit__(None, None, None)
        return self._exit_failed(acquire, exc)

    async def _exit_failed(self, acquire: Acquire, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError | asyncio.CancelledError):
            # A statement cut off (FASTERDB_COMMAND_TIMEOUT, a cancellation) may be waiting on a
            # server that no longer answers: close the connection rather than wait, in the release,
            # for asyncpg's cancel request to it (another command timeout), as transactions do.
            _terminate(acquire.connection)
        await acquire.__aexit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, TimeoutError):
            raise DatabaseUnavailable("timeout", pool=self._target) from exc


async def _nothing_to_release() -> None:
    return None
