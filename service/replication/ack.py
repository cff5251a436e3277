"""Replication acknowledgement: a transfer is acknowledged only once a standby has its COMMIT.

A transfer acknowledged on an old primary after a replica was promoted exists on the old primary
only, and is lost when it is stopped. A promoted replica receives no WAL from the old primary any
more, so "a standby has flushed this commit" is exactly what such a transfer never gets.

One waiter serves every transfer of the sidecar (group acknowledgement), on one connection it
borrows from the primary pool while transfers wait (and gives back when none does), so a
transfer's own connection makes no extra round trip. Each round reads the
primary's WAL insert position and how far its standbys have flushed (``pg_stat_replication``). A
transfer whose COMMIT returned before a round began ends at or before that round's insert
position; it is acknowledged once a later (or the same) round finds the standbys flushed that far.
Rounds run back to back only while transfers wait. Only the server the transfer committed on
counts: a round on another server (a multi-host DSN after a failover) acknowledges nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from fasterdb.errors import ServiceError
from fasterdb.pools.managed import Connection, ManagedPool
from fasterdb.tasks import cancel_and_wait

from .sql import AckPosition, peer, read_ack

log = logging.getLogger("fasterdb.ack")

AckMode = Literal["replica", "primary"]
# Between rounds: each round costs the sidecar's event loop a query, so they are paced and serve
# many waiters each; a transfer waits about a round and a half. 1 ms was right while a transfer
# took four round trips (back to back: -42 % transfers/s); with one, 0.5 ms gave +12 % and no
# pause no more (tests/bench/bench_transfers.py).
ROUND_PAUSE = 0.0005
# The WAL page headers a position can sit right after (short, and long at a segment's start).
PAGE_HEADERS = (24, 40)

__all__ = ["AckMode", "NotReplicated", "ReplicationAck", "peer"]


class NotReplicated(ServiceError):
    """The transfer committed on the primary but no standby confirmed it in time."""

    status = 503
    code = "not_replicated"


@dataclass(eq=False)
class _Waiter:
    server: object
    done: asyncio.Future[None]
    target: int | None = None  # the insert position of the first round that began after the COMMIT


def target_of(position: AckPosition) -> int | None:
    """The WAL position a commit that returned before ``position`` was read ends at, at the most.

    ``pg_current_wal_insert_lsn()`` right after a page header points past it; nothing ends there but
    the header, which a standby has only once the next record arrives: the page start is the target.
    """
    lsn = position.insert_lsn
    if lsn is None:
        return None
    offset = lsn % max(position.block_size, 1)
    return lsn - offset if offset in PAGE_HEADERS else lsn


class ReplicationAck:
    """Waits, for many transfers at once, until the primary's standbys have flushed their commits."""

    def __init__(self, pool: ManagedPool, mode: AckMode, timeout: float, deadline: float, standbys: int = 1) -> None:
        self.pool = pool  # the primary pool: one connection borrowed while transfers wait
        self.mode = mode
        self.timeout = timeout
        self.deadline = deadline
        self.standbys = standbys
        self._waiters: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self.last: AckPosition | None = None

    async def confirm(self, server: object) -> None:
        """Return once a standby has flushed what ``server`` committed so far; NotReplicated after
        the timeout (the transfer is committed on the primary: a retry with its key returns it)."""
        if self.mode == "primary":
            return
        waiter = _Waiter(server, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._rounds(), name="replication-ack")
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.shield(waiter.done)
        except TimeoutError:
            raise NotReplicated(self._why_not(waiter)) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _why_not(self, waiter: _Waiter) -> str:
        last = self.last
        if last is None:
            cause = "the primary's replication state could not be read"
        elif last.address != waiter.server or not last.writable:
            cause = "the server it committed on is not the primary the sidecar reaches now"
        elif last.standbys < self.standbys:
            cause = f"{last.standbys} standby(s) stream from the primary, {self.standbys} must confirm"
        else:
            cause = "no standby flushed it"
        return (
            f"the transfer committed on the primary but was not confirmed by a standby within "
            f"{self.timeout:g}s ({cause}); retry with the same idempotency_key"
        )

    async def _rounds(self) -> None:
        while self._waiters:
            try:
                async with self.pool.acquire(self.deadline, internal=True) as conn:
                    await self._burst(conn)
            except Exception as exc:  # a lost connection, a failover: the waiters' own timeouts bound this
                self.last = None
                log.debug("replication acknowledgement round failed: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(0.05)

    async def _burst(self, conn: Connection) -> None:
        """Rounds on one connection while transfers wait; returns to reconnect elsewhere."""
        while self._waiters:
            begun = list(self._waiters)  # these COMMITs returned before this round's query is sent
            async with asyncio.timeout(self.deadline):
                position = await read_ack(conn, self.standbys)
            self.last = position
            if not position.writable:
                return  # reached a standby (a failover): the next connection goes to the writable host
            target = target_of(position)
            for w in begun:
                if w.target is None and w.server == position.address:
                    w.target = target
            confirmed = position.confirmed_lsn
            for w in list(self._waiters):
                if w.target is not None and w.server == position.address and confirmed is not None:
                    if confirmed >= w.target:
                        if not w.done.done():
                            w.done.set_result(None)
                        self._waiters.remove(w)
            if self._waiters and not any(w.server == position.address for w in self._waiters):
                return  # they committed on another server than this connection reached (multi-host DSN)
            if self._waiters:
                await asyncio.sleep(ROUND_PAUSE)

    async def stop(self) -> None:
        """Stop the waiter (its borrowed connection goes back to the pool)."""
        await cancel_and_wait(self._task)
