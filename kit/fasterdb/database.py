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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import msgspec

from fasterdb.contract import AppReport, PoolBody, WaitMs
from fasterdb.errors import DatabaseUnavailable, ServiceError
from fasterdb.lsn import parse_lsn
from fasterdb.pools.acquire import Acquire
from fasterdb.pools.driver import DRIVER_ERRORS, terminate
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb.pools.transactions import Isolation, run_transaction, transaction
from fasterdb.read_after import ReadAfter
from fasterdb.routing import PRIMARY, Budget, Router
from fasterdb.settings import KitSettings
from fasterdb.sidecar import SidecarLink, View
from fasterdb.web import RequestState, current, current_state, install

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
        self.pools_by_name = {PRIMARY: self.primary, **self.replicas}
        # What a read routed to a server needs: its pool and its counter's key (made once).
        self.routes = {name: (pool, f"reads:{name}") for name, pool in self.pools_by_name.items()}
        # The kit's figures beside the router's (reported to the sidecar), each at 0 from the start.
        # (A plain dict, every key there from the start: a Counter's item updates are slower.)
        self.counts: dict[str, int] = dict.fromkeys([*(key for _, key in self.routes.values()), *COUNTED], 0)
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
        state = current_state()
        router = self.router
        if (
            max_lag_seconds is None
            and max_lag_bytes is None
            and (state is None or (state.read_after is None and state.write_position is None))
            and router.clock() <= router.fast_until
        ):
            # The common read (no token, no write before it, the default budget, a recent view),
            # routed here: Router.choose's fast path and Read._take, inlined, and the acquire
            # entered directly by ``async with`` (every call is a measurable share of a read).
            router.fast_reads += 1
            target = next(router.fast).target
            pool, key = self.routes[target]
            read = _new_read(Read)
            read._db = self
            read._target = target
            read._key = key
            read._state = state
            read._read_timeout = timeout
            read._managed = pool
            read._stats = pool.stats
            read._pool = read._conn = None
            read._timeout = pool.acquire_timeout if timeout is None else timeout
            return read
        budget = None
        if max_lag_seconds is not None or max_lag_bytes is not None:
            default = router.default
            budget = Budget(
                default.seconds if max_lag_seconds is None else max_lag_seconds,
                default.bytes if max_lag_bytes is None else max_lag_bytes,
            )
        return RoutedRead(self, budget, timeout, state)

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
            terminate(conn)  # a server that may be hung: closed now, whatever the release would find
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
                terminate(conn)  # cut off on a server that may not answer: do not wait on it
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


class Read(Acquire):
    """``async with db.read() as conn``: a routed acquire (always released) that names its server.

    The hot path of every read, so: a class rather than ``@asynccontextmanager``, and the
    acquire itself (a subclass) rather than an object around one. The common read is routed by
    ``Database.read`` and entered by ``async with`` as a plain acquire, so a read waiting for a
    connection resumes through no frame of the kit's own; others are ``RoutedRead``. Once a
    server has given a connection the read is counted (``reads:<server>``, a counter that only
    grows) and named in the request (``acquired``); a failed replica leaves the read to the
    primary (``fall_back``). (Together about a twentieth of a routed read + ``SELECT 1`` on a
    saturated pool, counted with callgrind; tests/bench/bench_kit.py measures the whole.)
    """

    __slots__ = ("_db", "_target", "_key", "_state", "_read_timeout")
    _db: Database
    _target: str
    _key: str  # the target's counter: reads:<target>
    _state: RequestState | None
    _read_timeout: float | None  # the read's own acquire timeout (None: the pool's)
    cut_off_closes = True
    falls_back = True
    notifies = True

    def _take(self, target: str) -> None:
        """Make this the acquire of ``target``'s pool."""
        pool, self._key = self._db.routes[target]
        self._target, self._managed, self._stats = target, pool, pool.stats
        self._timeout = pool.acquire_timeout if self._read_timeout is None else self._read_timeout

    def acquired(self) -> None:
        """A server gave the read its connection: count it there, and name it in the request."""
        self._db.counts[self._key] += 1
        state = self._state
        if state is not None:
            state.served_by = self._target

    async def fall_back(self, exc: BaseException) -> asyncpg.Connection:
        """The acquire failed: a failed replica leaves the read to the primary."""
        target = self._target
        if target == PRIMARY or not isinstance(exc, DatabaseUnavailable):
            raise exc
        log.debug("replica %s unavailable (%s); reading from the primary", target, exc.category)
        self._db.counts["read:replica_error"] += 1
        self._take(PRIMARY)  # a failing primary comes back here, and its failure is the read's
        return await _acquire_enter(self)


class RoutedRead(Read):
    """Every read but the common one: routed by ``Router.choose`` when entered (its own budget,
    a read-after position, no recent view, the spill policies)."""

    __slots__ = ("_budget", "_stale")
    _budget: Budget | None
    _stale: str | None  # the replica chosen past the read's budget (spill policy "stale")

    def __init__(self, db: Database, budget: Budget | None, timeout: float | None, state: RequestState | None) -> None:
        self._db, self._budget, self._read_timeout, self._state = db, budget, timeout, state
        self._target = PRIMARY
        self._stale = None
        self._pool = self._conn = None

    def __aenter__(self) -> Coroutine[Any, Any, asyncpg.Connection]:
        db, state = self._db, self._state
        position = None
        if state is not None:  # the token the request carried, or this request's own write: the later
            token, written = state.read_after, state.write_position
            position = written if token is None else token if written is None else max(token, written)
        choice = db.router.choose(self._budget, position)
        if choice.reason == "rejected":
            raise ReadsRejected(
                "no replica is within this read's staleness budget and the primary already serves its share"
            )
        if choice.wait_on is not None and position is not None:
            return self._enter_after(choice.wait_on, position)
        if choice.reason == "stale":
            self._stale = choice.target
        self._take(choice.target)
        return _acquire_enter(self)

    def acquired(self) -> None:
        """As ``Read.acquired``; a replica read past its budget also says how stale it is."""
        Read.acquired(self)
        state = self._state
        if state is not None and self._stale == self._target:
            state.stale_seconds = self._db.router.lag_seconds(self._target)

    async def _enter_after(self, wait_on: str, position: int) -> asyncpg.Connection:
        """A read-after read: the replica once it has replayed ``position`` (a bounded wait), else
        the primary."""
        db = self._db
        acquired = await db.caught_up(db.replicas[wait_on], position, self._read_timeout)
        db.counts["read_after:waited" if acquired is not None else "read_after:fallback"] += 1
        if acquired is None:
            self._take(PRIMARY)
            return await _acquire_enter(self)
        # this read takes over the waiting acquire's connection, and its release
        self._take(wait_on)
        self._pool, self._conn = acquired.take()
        self.acquired()
        return self.connection


# Read's paths reach these through globals (a class attribute is a slower lookup in 3.11).
_acquire_enter = Acquire.__aenter__
_new_read = object.__new__  # a Read without __init__: Database.read sets its fields
