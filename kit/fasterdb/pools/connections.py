"""The kit's pool of asyncpg connections: idle connections, waiting acquires, and the session reset.

Why not ``asyncpg.Pool``: every release there is a task of its own (``asyncio.shield`` around the
holder's release) and every acquire a trip through an ``asyncio.LifoQueue``; on a saturated pool
that is about a sixth of a ``SELECT 1``'s client-side cost (``make bench``: the same reads, same
reset, on a bare asyncpg pool and on this one). What this pool keeps of asyncpg's behaviour:

- connections handed out behind a proxy (``PooledConnection``) that refuses use once released;
- the same session reset on release (``Connection.reset()``: ROLLBACK of an open transaction, then
  asyncpg's reset query), or with ``reset_session`` off only the ROLLBACK of an open transaction;
- the last released connection is the next acquired (LIFO), so a quiet pool's cold connections are
  the ones that stay idle and are closed after ``max_inactive`` seconds, down to ``min_size``;
- a closed connection (lost, terminated) found idle or released is dropped and its slot freed;
- ``expire()`` replaces every connection: idle ones are closed now, those in use on release.

What it does differently: a release is not shielded from cancellation. A release cut off, a
reset that fails, or a statement still being cancelled (its error caught in the block) terminates
the connection instead of waiting on it: its session's state is unknown, and a freed slot lets the
next acquire open a fresh one. Waiting acquires are served first come, first served.

Acquire deadlines and statistics are the caller's (``fasterdb.pools.acquire``): a wait here is a
plain future, which the caller's deadline cancels.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from fasterdb.errors import DatabaseUnavailable

try:  # the base class asyncpg's own pool proxy has: what isinstance(x, Connection) accepts
    from asyncpg.connection import _ConnectionProxy
except ImportError:  # pragma: no cover - asyncpg without it: only that isinstance check is lost
    _ConnectionProxy = object

CLOSE_TIMEOUT = 2.0  # seconds a graceful close of an idle or expired connection may take


class PooledConnection(_ConnectionProxy):  # type: ignore[misc]  # asyncpg: untyped
    """An acquired connection: asyncpg's ``Connection`` methods, refused once it is released.

    As asyncpg's pool proxy: a handler that keeps its connection past the ``async with`` block gets
    ``InterfaceError`` rather than a session another request is using; and as that proxy,
    ``isinstance(conn, asyncpg.Connection)`` holds (asyncpg's Connection recognises its proxies).
    """

    __slots__ = ("_con",)
    _con: asyncpg.Connection | None

    def __getattr__(self, name: str) -> Any:  # attributes that are not methods (rare)
        if name.startswith("__"):  # introspection (hasattr, copy...): not the connection's
            raise AttributeError(name)
        return getattr(_open(self, name), name)

    def __repr__(self) -> str:
        return f"<PooledConnection {self._con!r}>" if self._con is not None else "<PooledConnection released>"


def _open(proxy: PooledConnection, name: str) -> asyncpg.Connection:
    con = proxy._con
    if con is None:
        raise asyncpg.InterfaceError(f"cannot call Connection.{name}(): the connection was released back to the pool")
    return con


def _forward(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def forward(self: PooledConnection, *args: Any, **kwargs: Any) -> Any:
        con = self._con
        if con is None:
            _open(self, name)
        return method(con, *args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = method.__doc__
    return forward


for _name in dir(asyncpg.Connection):
    _method = getattr(asyncpg.Connection, _name)
    if not _name.startswith("_") and inspect.isfunction(_method):
        setattr(PooledConnection, _name, _forward(_name, _method))


class ConnectionPool:
    """Up to ``max_size`` connections opened by ``connect``; see the module docstring. Created and
    used in one running event loop.

    The hot path reads ``idle`` (connections ready now, the last released at the end) and
    ``low`` directly: ``fasterdb.pools.acquire`` pops an idle connection without a call.
    """

    def __init__(
        self,
        connect: Callable[[], Coroutine[Any, Any, asyncpg.Connection]],
        *,
        name: str,
        min_size: int,
        max_size: int,
        max_inactive: float,
        reset_session: bool,
    ) -> None:
        self._connect = connect
        self.name = name
        self.min_size = min_size
        self.max_size = max_size
        self.max_inactive = max_inactive
        self.reset_session = reset_session
        self.idle: deque[asyncpg.Connection] = deque()
        # The fewest idle connections since the last sweep: the ones below that mark (the left end
        # of ``idle``) were not used the whole time.
        self.low = 0
        self.size = 0  # connections open or being opened (a taken slot)
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._generation = 0
        self._born: dict[asyncpg.Connection, int] = {}  # every open connection: its generation
        self._closing = False
        self._closed_all: asyncio.Future[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        # Created in its loop: futures and tasks without get_running_loop (a getpid() system call
        # in CPython before 3.12) on the path of every wait.
        self._loop = asyncio.get_running_loop()

    # -- opening ---------------------------------------------------------------------------------

    async def fill(self) -> None:
        """Open ``min_size`` connections now (concurrently); if one fails, close the others and raise."""
        loop = self._loop
        self.size += self.min_size
        connects = [loop.create_task(self._connect()) for _ in range(self.min_size)]
        try:
            opened = await asyncio.gather(*connects)
        except BaseException:  # a failure, or cut off: none of them is kept
            self.size -= self.min_size
            for connect in connects:
                connect.cancel()
            await asyncio.gather(*connects, return_exceptions=True)
            for connect in connects:
                if not connect.cancelled() and connect.exception() is None:
                    connect.result().terminate()
            raise
        for conn in opened:
            self._born[conn] = self._generation
            self.idle.append(conn)
        self.low = len(self.idle)
        if self.max_inactive > 0:
            self._sweeper = loop.call_later(self.max_inactive, self._sweep)

    async def _open_slot(self) -> asyncpg.Connection:
        """A new connection in a slot already counted in ``size`` (given back if the connect fails)."""
        generation = self._generation  # an expire() during the connect replaces this one too
        try:
            conn = await self._connect()
        except BaseException:
            self._free_slot()
            raise
        if self._closing:
            conn.terminate()
            self._free_slot()
            raise DatabaseUnavailable("pool closed", pool=self.name)
        self._born[conn] = generation
        if generation != self._generation:
            return await self._replace(conn)
        return conn

    async def _replace(self, conn: asyncpg.Connection) -> asyncpg.Connection:
        """An expired connection given to an acquire: closed, and a new one opened in its slot."""
        del self._born[conn]
        self._close_later(conn)
        return await self._open_slot()

    # -- acquiring -------------------------------------------------------------------------------

    async def get(self) -> asyncpg.Connection:
        """An idle connection, else a new one in a free slot, else the next one released (waits
        without a deadline of its own: the caller's cancels it)."""
        if self._closing:
            raise DatabaseUnavailable("pool closed", pool=self.name)
        idle = self.idle
        while idle:
            conn = idle.pop()
            if len(idle) < self.low:
                self.low = len(idle)
            if not conn.is_closed():
                return conn
            self.forget(conn)
        if self.size < self.max_size:
            self.size += 1
            return await self._open_slot()
        waiter: asyncio.Future[asyncpg.Connection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            if not waiter.done():
                waiter.cancel()
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            elif not waiter.cancelled() and waiter.exception() is None:
                # Given a connection (or a slot) and cut off before it could take it: pass it on.
                given = waiter.result()
                if given is None:
                    self._free_slot()
                else:
                    self._hand(given)
            # Cut-off acquires (a cancelled future: asyncio cancels it before this handler runs)
            # are skipped by hand-offs; those at the front go now, so that while every connection
            # is stuck the queue does not grow with each request that gives up.
            waiters = self._waiters
            while waiters and waiters[0].done():
                waiters.popleft()
            raise
        if conn is None:  # a slot was freed for this acquire
            return await self._open_slot()
        if self._born.get(conn) != self._generation:  # expired since it was handed over
            return await self._replace(conn)
        return conn

    # -- releasing -------------------------------------------------------------------------------

    async def release(self, conn: asyncpg.Connection) -> None:
        """Reset the session and hand the connection to the next waiting acquire, or keep it idle.

        A closed or expired connection is dropped (its slot freed); a reset that fails or is cut
        off terminates the connection, and the failure goes on to the caller.
        """
        if conn.is_closed():
            self.forget(conn)
            return
        if self._closing or self._born.get(conn) != self._generation:
            self._drop(conn)
            return
        if _cancelling(conn):
            # A statement cut off inside the block (its error caught there): the server may still
            # be running it, in a transaction the connection's status does not show yet. asyncpg's
            # pool waits for the cancellation (up to a command timeout); a fresh connection is sooner.
            conn.terminate()
            self.forget(conn)
            return
        try:
            if self.reset_session:
                await conn.reset()
            elif conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        except BaseException:
            conn.terminate()
            self.forget(conn)
            raise
        self._hand(conn)

    def _hand(self, conn: asyncpg.Connection) -> None:
        """To the first acquire still waiting, else idle (the end of ``idle``: used next); closed
        instead when the pool is closing or the connection expired (both may happen during a reset)."""
        if self._closing or self._born.get(conn) != self._generation:
            self._drop(conn)
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def _free_slot(self) -> None:
        """One connection fewer: the first acquire still waiting may open one in its place."""
        if self.size > 0:  # a connect that ends after terminate() has nothing left to free
            self.size -= 1
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                self.size += 1
                waiter.set_result(None)
                return
        if self.size == 0 and self._closed_all is not None and not self._closed_all.done():
            self._closed_all.set_result(None)

    def forget(self, conn: asyncpg.Connection) -> None:
        """A connection that is closed already: its slot is free."""
        if self._born.pop(conn, None) is not None:  # not counted any more after terminate()
            self._free_slot()

    def _drop(self, conn: asyncpg.Connection) -> None:
        """Close an open connection in the background (gracefully, else terminated); free its slot."""
        if self._born.pop(conn, None) is not None:
            self._free_slot()
        self._close_later(conn)

    def _close_later(self, conn: asyncpg.Connection) -> None:
        task = self._loop.create_task(_close(conn))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    # -- upkeep ----------------------------------------------------------------------------------

    def _sweep(self) -> None:
        """Close the connections idle since the last sweep, down to ``min_size``; again later.
        Connections the server closed while idle (anywhere in ``idle``) are forgotten first."""
        idle = self.idle
        closed = [conn for conn in idle if conn.is_closed()]
        for conn in closed:
            idle.remove(conn)
            self.forget(conn)
        for _ in range(max(0, min(self.low, len(idle), self.size - self.min_size))):
            self._drop(idle.popleft())
        self.low = len(idle)
        if not self._closing:
            self._sweeper = self._loop.call_later(self.max_inactive, self._sweep)

    def expire(self) -> None:
        """Replace every connection: idle ones are closed now, those in use when released."""
        self._generation += 1
        idle = self.idle
        while idle:
            self._drop(idle.pop())
        self.low = 0

    async def close(self) -> None:
        """Refuse new acquires, close idle connections, wait until those in use are released."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(DatabaseUnavailable("pool closed", pool=self.name))
        while self.idle:
            self._drop(self.idle.pop())
        if self.size > 0:
            self._closed_all = self._loop.create_future()
            await self._closed_all
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)

    def terminate(self) -> None:
        """Close every connection at once, in use or not (after a ``close`` that took too long)."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._born):
            conn.terminate()
        self._born.clear()
        self.idle.clear()
        self.size = 0
        for task in self._closers:
            task.cancel()
        if self._closed_all is not None and not self._closed_all.done():
            self._closed_all.set_result(None)


def _cancelling(conn: asyncpg.Connection) -> bool:
    """Whether asyncpg is still cancelling a statement of ``conn`` (its protocol's own state, which
    asyncpg's pool reads too; False where a future asyncpg has no such state)."""
    try:
        return bool(conn._protocol._is_cancelling())
    except AttributeError:  # pragma: no cover - another asyncpg
        return False


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=CLOSE_TIMEOUT)
    except BaseException:  # noqa: BLE001 - whatever happened, the connection must end
        conn.terminate()
