"""One shared producer for every open status stream, bounded in how many it serves.

However many pages are open, one task builds one view per interval and every stream sends that
same one; the task runs only while at least one stream is open and stops when the last one ends
(a client that vanished ends its stream: ``http.sse.EventStream``). Past ``max_streams`` a new
stream is refused (503) instead of adding work. When the sidecar drains, every stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from fasterdb.errors import ServiceError

T = TypeVar("T")
log = logging.getLogger("fasterdb.status")


class TooManyStreams(ServiceError):
    """More status streams are open than this sidecar serves."""

    status = 503
    code = "too_many_streams"


class Feed(Generic[T]):
    """Builds a value every ``interval`` seconds while anyone listens, and hands each to every listener."""

    def __init__(
        self, build: Callable[[], Awaitable[T]], interval: float, max_streams: int, stopping: Callable[[], bool]
    ) -> None:
        self.build = build
        self.interval = interval
        self.max_streams = max_streams
        self.stopping = stopping
        self.streams = 0
        self._number = 0  # of the latest value, increasing for the sidecar's life
        self._latest: T | None = None  # None while no producer runs: a new listener never gets a stale one
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the producer task is alive (only while some stream is open)."""
        return self._task is not None and not self._task.done()

    def admit(self) -> None:
        """Refuse (503) a new stream at once when as many as this sidecar serves are open."""
        if self.streams >= self.max_streams:
            raise TooManyStreams(f"{self.streams} status streams are open (the most this sidecar serves); retry later")

    async def values(self) -> AsyncIterator[T]:
        """The current value, then each new one, until the sidecar drains (nothing past ``max_streams``)."""
        if self.streams >= self.max_streams:
            return  # admitted in a burst beyond the bound: end at once rather than add work
        self.streams += 1
        try:
            if not self.running:
                self._task = asyncio.create_task(self._produce(), name="status-feed")
            seen = 0
            while not self.stopping():
                if self._latest is not None and self._number != seen:
                    seen = self._number
                    yield self._latest
                    continue
                await self._changed.wait()
        finally:
            self.streams -= 1
            if self.streams == 0 and self._task is not None:
                # Detach first: a stream that opens while this one waits starts a producer of its own.
                task, self._task, self._latest = self._task, None, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self.stopping():
            try:
                value = await self.build()
            except Exception:
                log.exception("status view failed; the streams keep the last one")
            else:
                self._number += 1
                self._latest = value
                self._wake()
            next_at = max(next_at + self.interval, loop.time())  # after a slow build, no burst to catch up
            # Short steps, so a drain ends the streams promptly.
            while not self.stopping() and (left := next_at - loop.time()) > 0:
                await asyncio.sleep(min(left, 0.25))
        self._wake()  # draining: let every stream see it and end

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
