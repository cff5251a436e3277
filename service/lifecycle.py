"""The sidecar's lifecycle as one object: starting → serving → draining → stopped.

Health reads it and nothing else decides these states (cloud-sql-proxy's healthcheck is the model):
``/health/startup`` asks whether start-up is over, ``/health/db`` turns 503 ``draining`` the
moment SIGTERM arrives, and the HTTP edge cuts requests off with a JSON 503 at the drain limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

State = Literal["starting", "serving", "draining", "stopped"]


class Lifecycle:
    """Where the sidecar is in its life, and the requests it is still answering."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.state: State = "starting"
        self.draining_since: float | None = None
        self.requests: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def serving(self) -> None:
        """Start-up is over (the pools are open, the background tasks run); HTTP answers from now on."""
        if self.state == "starting":
            self.state = "serving"

    def drain(self) -> bool:
        """SIGTERM arrived: readiness fails from now on. True the first time, False when already draining."""
        if self.state in ("draining", "stopped"):
            return False
        self.state = "draining"
        self.draining_since = self._clock()
        return True

    def stopped(self) -> None:
        """The pools are closed; nothing is served any more."""
        self.state = "stopped"

    @property
    def draining(self) -> bool:
        """Whether SIGTERM arrived (draining or stopped)."""
        return self.state in ("draining", "stopped")

    def readiness_reason(self) -> str | None:
        """Why the sidecar must not get new traffic whatever the database says, or None."""
        if self.state == "serving":
            return None
        return "draining" if self.draining else "starting"

    def request_started(self, task: asyncio.Task[object]) -> None:
        """An HTTP request is being answered by ``task``."""
        self.requests.add(task)
        self._idle.clear()

    def request_finished(self, task: asyncio.Task[object]) -> None:
        """``task`` has answered its request (or given up on it)."""
        self.requests.discard(task)
        if not self.requests:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no request is in flight; True when none is."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
