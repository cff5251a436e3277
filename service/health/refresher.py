"""The background refresher: checks every pool and replica lag periodically.

So that /metrics, /pools and the lag history stay current even when nobody probes
(``FASTERDB_MONITOR_INTERVAL``; 0 turns it off and everything is measured on request only).
"""

from __future__ import annotations

import asyncio
import logging

from fasterdb.tasks import cancel_and_wait

from ..replication.lag import LagMeter
from .checks import PoolHealth

log = logging.getLogger("fasterdb.refresher")


class Refresher:
    """One task that refreshes the health and lag caches every ``interval`` seconds."""

    def __init__(self, health: PoolHealth, lag: LagMeter, interval: float) -> None:
        self.health = health
        self.lag = lag
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start refreshing (nothing happens with an interval of 0)."""
        if self.interval > 0:
            self._task = asyncio.create_task(self._run(), name="refresher")

    async def stop(self) -> None:
        """Stop refreshing."""
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        pools = [p.name for p in self.health.databases]
        while True:
            try:
                await asyncio.gather(*(self.health.check(name) for name in pools), self.lag.snapshot())
            except Exception:  # never let the refresher die; the checks themselves don't raise
                log.exception("background refresh failed")
            await asyncio.sleep(self.interval)
