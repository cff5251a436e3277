"""How late the event loop runs what is due: the metric that explains tail latencies.

A task asks to wake every ``INTERVAL`` seconds and records how much later than asked it did: a
loop busy with work (a large response, a slow callback, a starved CPU) delays every request and
probe by as much. ``fasterdb_event_loop_lag_seconds`` is the largest delay seen over the last
``WINDOW`` seconds (a gauge: a spike stays visible to a 15 s scrape), beside the latest one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from fasterdb.tasks import cancel_and_wait

INTERVAL = 0.1
WINDOW = 15.0


class LoopLag:
    """Measures the event loop's delay in waking a sleeping task."""

    def __init__(self, interval: float = INTERVAL, window: float = WINDOW) -> None:
        self.interval = interval
        self.latest = 0.0
        self._recent: deque[tuple[float, float]] = deque(maxlen=int(window / interval) + 1)  # (when, lag)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start measuring."""
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        """Stop measuring."""
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.latest = max(0.0, now - asked - self.interval)
            self._recent.append((now, self.latest))

    def worst(self) -> float:
        """The largest delay of the window (0 before the first measurement)."""
        return max((lag for _, lag in self._recent), default=0.0)
