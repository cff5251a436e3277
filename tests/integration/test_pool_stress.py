"""A randomized concurrency stress of the kit's connection pool (fasterdb.pools.connections, through
fasterdb.pools.acquire and ManagedPool) against the real primary.

Fifty tasks share a pool of three or four whose inactivity sweep runs every 0.05 s. At random (one
``random.Random`` per seed and task) they acquire with short or long timeouts (plain acquires
and ones whose cut-off block closes its connection, as the kit's reads), run a statement, sleep
on the server, raise in the block, leave a transaction or a setting behind, acquire a second
connection inside the block, terminate or close their connection, have the server end one of
the pool's sessions (pg_terminate_backend), expire the pool, cut a statement off with
``asyncio.timeout`` (swallowed, or not), and are cancelled from outside at their start, while
acquiring, inside the block or during the release. Some seeds close the pool while all this runs.
A seed fixes the choices, not the interleaving (a real server answers when it does): a failure
names the seed and the recent events.

Checked all along (a checker task every millisecond, and each task at each step): the slot count
stays within 0..max_size and covers the connections known and those held and idle; no
connection is held by two acquires, or held and idle; ``idle`` has no duplicate, only open
connections of the current generation, and no acquire waits while one is idle or a slot is
free; an acquire gets an open connection of the current generation, outside a transaction, not
still being cancelled (and, with ``reset_session``, without the previous holder's setting),
within its timeout (plus a margin); no error but the expected ones, no cancellation nobody made,
none left counted on a task. At the end, once settled (polled, bounded): every slot idle, as many
backends in pg_stat_activity (by the pool's application_name) as slots, no pending waiter, no
deadline left registered, the sweep down to ``min_size``; ``close()`` finishes within a bound
and leaves no backend; no error reported to the event loop.

``FASTERDB_STRESS_SEEDS`` (e.g. ``1-40``) runs other seeds; ``-s`` prints each run's counts.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from devtools.hot_standby import HotStandbyCluster
from fasterdb.errors import DatabaseUnavailable
from fasterdb.pools.acquire import Acquire
from fasterdb.pools.connections import ConnectionPool, _cancelling
from fasterdb.pools.managed import ManagedPool, PoolConfig

TASKS = 50
OVERRUN = 0.5  # seconds an acquire may take past its timeout (a busy two-core machine)
RUN_SECONDS = 1.2  # new operations start for this long in each case
FINISH_SECONDS = 8.0  # the operations under way must end within this (their acquire timeouts are <= 1 s)
SETTLE_SECONDS = 5.0
CLOSE_SECONDS = 5.0
DIRTY_WORK_MEM = "1234kB"


def _seeds() -> list[int]:
    spec = os.environ.get("FASTERDB_STRESS_SEEDS")
    if not spec:
        return [1, 2, 3, 4, 11]
    seeds: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def _config(seed: int) -> dict[str, Any]:
    """Each seed's pool: both reset modes, min_size 0..2, max_size 3..4, both profiles, a close() mid-run
    or not (the default seeds cover each)."""
    return {
        "min_size": (0, 2, 1, 2)[seed % 4],
        "max_size": (3, 4, 3, 3)[seed % 4] if seed < 4 else 3 + seed % 2,
        "reset_session": seed % 2 == 1,
        # close() while the tasks still run (then no settling: everything must end and close)
        "close_mid_run": seed % 4 == 3,
        # "queue": long acquire timeouts, few cancellations (many waiters, many hand-offs);
        # "chaos": short timeouts and many cancellations
        "profile": "queue" if seed % 3 == 2 else "chaos",
        "max_inactive_connection_lifetime": 0.05,
        "acquire_timeout": 1.0,
        "command_timeout": 5.0,
    }


class Boom(Exception):
    """Raised inside a block on purpose."""


class ClosingAcquire(Acquire):
    """An acquire whose block cut off by a timeout or a cancellation closes its connection (the
    kit's reads, fasterdb.database.Read)."""

    __slots__ = ()
    cut_off_closes = True


@dataclass
class Acq:
    timeout: float
    action: str
    sleep: float
    follow_up: bool
    closing: bool  # a ClosingAcquire


@dataclass
class Op:
    ident: int
    acquires: list[Acq]
    cancel: str  # "", "start", "acquiring", "inside", "releasing", "random"
    cancel_spins: int
    cancel_delay: float
    phases: dict[str, asyncio.Event] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)  # the backends of the current acquire (nested included)


ACTIONS = (
    ["select"] * 6
    + ["sleep"] * 5
    + ["raise"] * 2
    + ["terminate"] * 1
    + ["expire"] * 1
    + ["timeout"] * 2
    + ["transaction"] * 2
    + ["set"] * 2
    + ["nothing"] * 2
    + ["nested"] * 2
    + ["timeout_escapes"] * 1
    + ["close"] * 1
    + ["kill"] * 1
)
QUEUE_ACTIONS = ACTIONS + ["select"] * 10 + ["sleep"] * 10
CANCELS = [""] * 12 + ["start", "acquiring", "acquiring", "inside", "inside", "releasing", "releasing", "random"]
LOST = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    ConnectionError,
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,  # pg_terminate_backend
)


class Stress:
    def __init__(self, pool: ManagedPool, seed: int, config: dict[str, Any]) -> None:
        self.pool = pool
        self.seed = seed
        self.max_size = config["max_size"]
        self.min_size = config["min_size"]
        self.reset_session = config["reset_session"]
        self.config = config
        self.observer: asyncpg.Connection | None = None
        self.observer_lock = asyncio.Lock()
        self.killed: set[int] = set()  # backends terminated by pg_terminate_backend
        self.closing = False  # close() called mid-run: "pool closed" is expected from then on
        self.held: dict[asyncpg.Connection, int] = {}
        self.violations: list[str] = []
        self.events: collections.deque[str] = collections.deque(maxlen=80)
        self.counts: collections.Counter[str] = collections.Counter()
        self.started = time.monotonic()
        self.next_ident = 0
        self.max_seen_size = 0
        self.max_stale_waiters = 0  # futures of acquires cut off, still in _waiters (popped by hand-offs)

    @property
    def cp(self) -> ConnectionPool:
        cp = self.pool.connections
        assert cp is not None
        return cp

    def log(self, ident: int, what: str) -> None:
        cp = self.pool.connections
        state = f"size={cp.size} idle={len(cp.idle)} gen={cp._generation}" if cp is not None else "-"
        self.events.append(f"{time.monotonic() - self.started:7.3f} op{ident} {what} [{state}]")

    def violation(self, what: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(what)
            self.events.append(f"{time.monotonic() - self.started:7.3f} VIOLATION {what}")

    # -- invariants ------------------------------------------------------------------------------

    def check(self, where: str) -> None:
        cp = self.cp
        size = cp.size
        self.max_seen_size = max(self.max_seen_size, size)
        if not 0 <= size <= self.max_size:
            self.violation(f"{where}: size {size} outside 0..{self.max_size}")
        idle = list(cp.idle)
        if len({id(c) for c in idle}) != len(idle):
            self.violation(f"{where}: a connection twice in idle")
        for conn in idle:
            if conn.is_closed() and conn.get_server_pid() not in self.killed:
                self.violation(f"{where}: a closed connection idle")
            if cp._born.get(conn) != cp._generation:
                self.violation(f"{where}: an idle connection of generation {cp._born.get(conn)} != {cp._generation}")
            if conn in self.held:
                self.violation(f"{where}: a connection idle and held by op{self.held[conn]}")
        if len(cp._born) > size:
            self.violation(f"{where}: {len(cp._born)} connections known for {size} slots")
        if len(self.held) + len(idle) > size:
            self.violation(f"{where}: {len(self.held)} held + {len(idle)} idle > {size} slots")
        if cp.low > len(idle):
            self.violation(f"{where}: low-water mark {cp.low} above {len(idle)} idle")
        pending = sum(not w.done() for w in cp._waiters)
        self.max_stale_waiters = max(self.max_stale_waiters, len(cp._waiters) - pending)
        if pending and (idle or size < self.max_size):
            self.violation(f"{where}: {pending} acquires wait with {len(idle)} idle and {size}/{self.max_size} slots")

    def live_slots(self) -> int:
        """The slots whose connection the server still has: idle ones it ended (pg_terminate_backend)
        stay counted until they are next acquired or swept, as in asyncpg's pool."""
        cp = self.cp
        return cp.size - sum(1 for c in cp.idle if c.is_closed() and c.get_server_pid() in self.killed)

    def entered(self, ident: int, raw: asyncpg.Connection) -> None:
        cp = self.cp
        if raw in self.held:
            self.violation(f"op{ident}: acquired a connection op{self.held[raw]} holds")
        self.held[raw] = ident
        if raw.is_closed() and raw.get_server_pid() not in self.killed:
            self.violation(f"op{ident}: acquired a closed connection")
        if raw in cp.idle:
            self.violation(f"op{ident}: acquired a connection still idle")
        if cp._born.get(raw) != cp._generation:
            self.violation(f"op{ident}: acquired a connection of generation {cp._born.get(raw)} != {cp._generation}")
        if raw.is_in_transaction() and not raw.is_closed():
            self.violation(f"op{ident}: acquired a connection in a transaction")
        if _cancelling(raw):
            self.violation(f"op{ident}: acquired a connection whose statement is still being cancelled")
        self.check(f"op{ident} entered")

    def left(self, ident: int, raw: asyncpg.Connection) -> None:
        if self.held.get(raw) != ident:
            self.violation(f"op{ident}: left a connection held by op{self.held.get(raw)}")
        self.held.pop(raw, None)
        self.check(f"op{ident} leaving")

    async def checker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.check("checker")
            await asyncio.sleep(0.001)

    # -- the operations --------------------------------------------------------------------------

    def new_op(self, rng: random.Random) -> Op:
        self.next_ident += 1
        queue = self.config["profile"] == "queue"
        timeouts = [0.05, 0.3, 1.0, 1.0] if queue else [0.001, 0.005, 0.02, 0.05, 1.0, 1.0]
        acquires = [
            Acq(
                timeout=rng.choice(timeouts),
                action=rng.choice(QUEUE_ACTIONS if queue else ACTIONS),
                sleep=rng.choice([0.001, 0.005, 0.01, 0.03]),
                follow_up=rng.random() < 0.5,
                closing=rng.random() < 0.3,
            )
            for _ in range(rng.choice([1, 1, 1, 2, 3]))
        ]
        return Op(
            self.next_ident,
            acquires,
            cancel=rng.choice(CANCELS) if not queue or rng.random() < 0.3 else "",
            cancel_spins=rng.choice([0, 0, 1, 2, 3]),
            cancel_delay=rng.uniform(0, 0.03),
            phases={p: asyncio.Event() for p in ("acquiring", "inside", "releasing")},
        )

    async def run_op(self, op: Op) -> str:
        outcome = []
        for n, acq in enumerate(op.acquires):
            op.phases["acquiring"].set()
            self.log(op.ident, f"acquire#{n} timeout={acq.timeout} action={acq.action} closing={acq.closing}")
            pid = None
            op.pids.clear()
            started = time.monotonic()
            try:
                async with self.acquire(acq) as conn:
                    self.on_time(op, acq, started, "entered")
                    raw = conn._con
                    pid = raw.get_server_pid()
                    op.pids.add(pid)
                    self.entered(op.ident, raw)
                    op.phases["inside"].set()
                    self.log(op.ident, f"in #{n} pid={pid}")
                    try:
                        await self.action(op, acq, conn)
                    finally:
                        self.left(op.ident, raw)
                        op.phases["releasing"].set()
                        self.log(op.ident, f"releasing #{n}")
                if conn._con is not None:
                    self.violation(f"op{op.ident}: the proxy still usable after its block")
                outcome.append("ok")
            except DatabaseUnavailable as exc:
                if pid is None:
                    self.on_time(op, acq, started, f"failed ({exc.category})")
                if exc.category == "pool closed" and self.closing:
                    outcome.append("closed")
                elif exc.category != "timeout":
                    self.violation(f"op{op.ident}: acquire failed: {exc.category}")
                else:
                    outcome.append("timeout")
            except TimeoutError:
                if acq.action != "timeout_escapes" or acq.closing:
                    raise
                outcome.append("cut off")
            except Boom:
                outcome.append("boom")
            except LOST:
                if acq.action not in ("terminate", "close", "kill") and not op.pids & self.killed:
                    raise
                outcome.append("lost")
            self.check(f"op{op.ident} after #{n}")
        return ",".join(outcome)

    def on_time(self, op: Op, acq: Acq, started: float, what: str) -> None:
        took = time.monotonic() - started
        if took > acq.timeout + OVERRUN:
            self.violation(f"op{op.ident}: an acquire with a {acq.timeout}s timeout {what} after {took:.2f}s")

    def acquire(self, acq: Acq) -> Acquire:
        if acq.closing:
            return ClosingAcquire(self.pool, acq.timeout, self.pool.stats)
        return self.pool.acquire(acq.timeout)

    async def kill(self, pid: int | None = None) -> None:
        """pg_terminate_backend of one of the pool's backends (``pid``, else any)."""
        assert self.observer is not None
        async with self.observer_lock:
            if pid is None:
                pid = await self.observer.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY random() LIMIT 1",
                    self.pool.application_name,
                )
            if pid is not None:
                self.killed.add(pid)
                await self.observer.fetchval("SELECT pg_terminate_backend($1)", pid)

    async def action(self, op: Op, acq: Acq, conn: asyncpg.Connection) -> None:
        action = acq.action
        self.counts[f"in block: {action}"] += 1
        if action == "select":
            work_mem = await conn.fetchval("SELECT current_setting('work_mem')")
            if self.reset_session and work_mem == DIRTY_WORK_MEM:
                self.violation(f"op{op.ident}: the previous holder's setting survived the session reset")
        elif action == "sleep":
            await conn.execute(f"SELECT pg_sleep({acq.sleep})")
        elif action == "raise":
            await conn.fetchval("SELECT 1")
            raise Boom()
        elif action == "terminate":
            conn.terminate()
            if acq.follow_up:
                await conn.fetchval("SELECT 1")  # lost: raises
        elif action == "expire":
            await self.pool.expire()
            self.log(op.ident, "expired the pool inside its block")
            assert await conn.fetchval("SELECT 1") == 1  # the connection in use keeps working
        elif action == "timeout":
            try:
                async with asyncio.timeout(acq.sleep):
                    sql = "BEGIN; SELECT pg_sleep(0.05)" if acq.follow_up else "SELECT pg_sleep(0.05)"
                    await conn.execute(sql)
            except TimeoutError:
                self.counts["swallowed timeouts"] += 1
        elif action == "transaction":
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT 1")  # left open: the release rolls it back
        elif action == "set":
            await conn.execute(f"SET work_mem = '{DIRTY_WORK_MEM}'")
        elif action == "nested":  # a second connection in the same task (e.g. a read beside a transaction)
            inner = Acq(timeout=acq.sleep, action="select", sleep=acq.sleep, follow_up=False, closing=not acq.closing)
            try:
                async with self.acquire(inner) as other:
                    raw = other._con
                    op.pids.add(raw.get_server_pid())
                    if raw is conn._con:
                        self.violation(f"op{op.ident}: a nested acquire got the connection of its own task")
                    self.entered(op.ident * 1000, raw)
                    try:
                        await self.action(op, inner, other)
                    finally:
                        self.left(op.ident * 1000, raw)
            except DatabaseUnavailable as exc:
                if exc.category != "timeout" and not (self.closing and exc.category == "pool closed"):
                    raise
            await conn.fetchval("SELECT 1")  # the outer connection still works
        elif action == "timeout_escapes":  # a statement cut off by the handler's own deadline
            async with asyncio.timeout(acq.sleep):
                await conn.execute("SELECT pg_sleep(0.05)")
        elif action == "close":
            await conn.close(timeout=2)
            if acq.follow_up:
                await conn.fetchval("SELECT 1")  # closed: raises
        elif action == "kill":  # the server ends a session: this one, or any of the pool's
            await self.kill(raw_pid(conn) if acq.follow_up else None)
            await conn.fetchval("SELECT 1")
        if acq.sleep >= 0.03 and action in ("nothing", "set"):
            await asyncio.sleep(acq.sleep)  # held without a statement

    async def canceller(self, op: Op, task: asyncio.Task[str]) -> bool:
        if op.cancel == "random":
            await asyncio.sleep(op.cancel_delay)
        elif op.cancel != "start":
            await op.phases[op.cancel].wait()
        for _ in range(op.cancel_spins):
            await asyncio.sleep(0)
        if task.done():
            return False
        self.log(op.ident, f"cancelled from outside ({op.cancel})")
        task.cancel()
        return True

    async def worker(self, w: int, until: float) -> None:
        rng = random.Random(f"{self.seed}/{w}")
        if self.config["close_mid_run"]:
            until += 0.2  # on past the close(): acquires of a closing pool
        while time.monotonic() < until:
            if rng.random() < 0.03:
                await self.pool.expire()
                self.log(0, f"worker{w} expired the pool")
                self.check("after expire")
                continue
            op = self.new_op(rng)
            task = asyncio.create_task(self.run_op(op), name=f"op{op.ident}")
            canceller = asyncio.create_task(self.canceller(op, task)) if op.cancel else None
            await asyncio.wait([task])
            cancelled = False
            if canceller is not None:
                if canceller.done():
                    cancelled = canceller.result()
                else:
                    canceller.cancel()
                    await asyncio.gather(canceller, return_exceptions=True)
            self.outcome(op, task, cancelled)
            await asyncio.sleep(rng.choice([0, 0, 0, 0.001, 0.005]))

    def outcome(self, op: Op, task: asyncio.Task[str], cancelled: bool) -> None:
        if task.cancelled():
            self.counts["cancelled"] += 1
            self.log(op.ident, "ended cancelled")
            if not cancelled:
                self.violation(f"op{op.ident}: a CancelledError nobody asked for ({op.acquires})")
            return
        exc = task.exception()
        if exc is not None:
            self.log(op.ident, f"ended with {exc!r}")
            self.violation(f"op{op.ident}: unexpected {type(exc).__name__}: {exc} ({op.acquires})")
            return
        self.counts[task.result()] += 1
        self.log(op.ident, f"ended {task.result()}")
        if not cancelled and task.cancelling():
            self.violation(
                f"op{op.ident}: a cancellation left counted on its task ({task.cancelling()}) ({op.acquires})"
            )


def raw_pid(conn: asyncpg.Connection) -> int:
    return int(conn.get_server_pid())


async def _backends(observer: asyncpg.Connection, application_name: str) -> int:
    return int(
        await observer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application_name)
    )


async def _until(condition: Any, timeout: float) -> bool:
    """Poll an async or plain condition (bounded); whether it came true."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def _stress(pg: HotStandbyCluster, seed: int) -> tuple[Stress, dict[str, Any]]:
    config = _config(seed)
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message"))
        if "Resetting connection with an active transaction" in message:
            return  # asyncpg's own warning on reset (the "transaction" action, by design)
        exc = context.get("exception")
        if isinstance(exc, ConnectionError) and str(exc) == "unexpected connection_lost() call":
            # asyncpg's SSLRequest future (TLSUpgradeProto.on_data) when a connect is cut off
            # inside loop.create_connection (an acquire's deadline or cancellation): asyncio closes
            # the transport and nobody awaits that future any more. asyncpg's, not the pool's.
            return
        loop_errors.append(f"{message}: {context.get('exception')!r}")

    loop.set_exception_handler(on_loop_error)
    pool = ManagedPool(
        f"stress{seed}",
        "primary",
        pg.dsn(),
        PoolConfig(**{k: v for k, v in config.items() if k not in ("close_mid_run", "profile")}),
    )
    observer = await asyncpg.connect(pg.dsn(), server_settings={"application_name": "fasterdb-test/stress-observer"})
    await pool.open()
    await pool.ensure_created(10)
    stress = Stress(pool, seed, config)
    stress.observer = observer
    cp = stress.cp
    try:
        stop = asyncio.Event()
        checker = asyncio.create_task(stress.checker(stop))
        until = time.monotonic() + RUN_SECONDS
        workers = [asyncio.create_task(stress.worker(w, until)) for w in range(TASKS)]
        if config["close_mid_run"]:
            await asyncio.sleep(RUN_SECONDS)
            stress.closing = True
            stress.log(0, "close() while the tasks run")
            try:
                await asyncio.wait_for(cp.close(), CLOSE_SECONDS)
            except TimeoutError:
                stress.violation(
                    f"close() mid-run did not finish in {CLOSE_SECONDS}s: size={cp.size} idle={len(cp.idle)} "
                    f"known={len(cp._born)} held={len(stress.held)}"
                )
                cp.terminate()
            stress.log(0, "closed")
        done, pending = await asyncio.wait(workers, timeout=RUN_SECONDS + FINISH_SECONDS)
        if pending:
            stress.violation(f"{len(pending)} tasks still running {FINISH_SECONDS}s after the last operation started")
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                stress.violation(f"a worker failed: {task.exception()!r}")
        stop.set()
        await checker
        stress.check("end")

        name = pool.application_name
        if config["close_mid_run"]:
            await _check_closed(stress, cp, observer, name, loop_errors)
            return stress, {
                "max_size_seen": stress.max_seen_size,
                "max_stale_waiters": stress.max_stale_waiters,
                **stress.counts,
            }

        # Settled: every slot idle and known, as many backends as slots, nobody waiting.
        if not await _until(lambda: cp.size == len(cp.idle) == len(cp._born) and not cp._closers, SETTLE_SECONDS):
            stress.violation(
                f"not settled: size={cp.size} idle={len(cp.idle)} known={len(cp._born)} closers={len(cp._closers)}"
            )
        settled = (cp.size, len(cp.idle))
        backends_ok = await _until(lambda: _count_is(observer, name, stress.live_slots()), SETTLE_SECONDS)
        if not backends_ok:
            stress.violation(f"{await _backends(observer, name)} backends for {cp.size} slots ({len(cp.idle)} idle)")
        if any(not w.done() for w in cp._waiters):
            stress.violation(f"{sum(not w.done() for w in cp._waiters)} waiters pending with nobody acquiring")
        deadlines = pool.deadlines
        if deadlines.waiting or deadlines.expired_tasks:
            stress.violation(
                f"deadlines left: {len(deadlines.waiting)} waiting, {len(deadlines.expired_tasks)} expired"
            )
        if pool.stats.waiting != 0:
            stress.violation(f"stats.waiting is {pool.stats.waiting} with nobody acquiring")
        # The sweep brings a quiet pool down to min_size (never below what is left).
        if not await _until(lambda: cp.size <= config["min_size"] and not cp._closers, SETTLE_SECONDS):
            stress.violation(f"the sweep left {cp.size} connections (min_size {config['min_size']})")
        if not await _until(lambda: _count_is(observer, name, stress.live_slots()), SETTLE_SECONDS):
            stress.violation(f"{await _backends(observer, name)} backends for {cp.size} slots after the sweep")
        stress.check("swept")

        # close() finishes in time and leaves nothing.
        try:
            await asyncio.wait_for(cp.close(), CLOSE_SECONDS)
        except TimeoutError:
            stress.violation(f"close() did not finish in {CLOSE_SECONDS}s: size={cp.size} idle={len(cp.idle)}")
            cp.terminate()
        await _check_closed(stress, cp, observer, name, loop_errors)
        summary = {
            "settled": settled,
            "max_size_seen": stress.max_seen_size,
            "max_stale_waiters": stress.max_stale_waiters,
            **stress.counts,
        }
        return stress, summary
    finally:
        await pool.close(timeout=CLOSE_SECONDS)
        await observer.close()


async def _count_is(observer: asyncpg.Connection, name: str, expected: int) -> bool:
    return await _backends(observer, name) == expected


async def _check_closed(
    stress: Stress, cp: ConnectionPool, observer: asyncpg.Connection, name: str, loop_errors: list[str]
) -> None:
    """After close(): nothing counted, no backend left (polled), no error reported to the loop."""
    if cp.size or cp.idle or cp._born:
        stress.violation(f"after close(): size={cp.size} idle={len(cp.idle)} known={len(cp._born)}")
    if not await _until(lambda: _count_is(observer, name, 0), SETTLE_SECONDS):
        stress.violation(f"{await _backends(observer, name)} backends left after close()")
    for error in loop_errors:
        stress.violation(f"event loop error: {error}")


@pytest.mark.parametrize("seed", _seeds())
def test_the_pool_keeps_its_invariants_under_random_concurrent_use(pg: HotStandbyCluster, seed: int) -> None:
    started = time.monotonic()
    stress, summary = asyncio.run(_stress(pg, seed))
    elapsed = time.monotonic() - started
    print(f"seed {seed} {_config(seed)}: {elapsed:.1f}s {summary}")
    assert not stress.violations, (
        f"seed {seed} ({_config(seed)}): {len(stress.violations)} violations:\n  "
        + "\n  ".join(stress.violations[:15])
        + "\nrecent events:\n  "
        + "\n  ".join(stress.events)
    )
    assert summary.get("ok", 0) > 0  # the run did work, not only time out
