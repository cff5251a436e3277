"""A short, bounded history of each replica's lag, kept in memory for the status page's sparklines.

Fed from the lag meter's measurements (the background monitor's, the probes', the page's own);
never queries anything itself. At most one sample per replica per ``resolution`` seconds, and only
the last ``window`` seconds are kept, so memory stays bounded however often lag is measured.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..replication.lag import Snapshot

WINDOW_SECONDS = 300.0  # what the sparklines show
RESOLUTION_SECONDS = 1.0


@dataclass(frozen=True)
class Sample:
    """One measurement of one replica (None: its lag was unknown then, e.g. down)."""

    at: float
    lag_bytes: int | None
    lag_seconds: float | None


class LagHistory:
    """The last ``window`` seconds of lag per replica, one sample per ``resolution`` at most."""

    def __init__(self, window: float = WINDOW_SECONDS, resolution: float = RESOLUTION_SECONDS) -> None:
        self.window = window
        self.resolution = resolution
        self._samples: dict[str, deque[Sample]] = {}
        self._last_measured: float | None = None

    def record(self, snapshot: Snapshot | None) -> None:
        """Add a measurement (once: the same snapshot recorded twice counts once)."""
        if snapshot is None or snapshot.measured_at == self._last_measured:
            return
        self._last_measured = snapshot.measured_at
        at = snapshot.measured_at
        for lag in snapshot.replicas:
            samples = self._samples.setdefault(lag.name, deque(maxlen=int(self.window / self.resolution) + 1))
            # The newest sample is always the latest measurement; it replaces the one before only
            # while those two would sit closer than one resolution step to the sample before them.
            if len(samples) >= 2 and at - samples[-2].at < self.resolution:
                samples.pop()
            samples.append(Sample(at, lag.lag_bytes, lag.lag_seconds))
            while samples and samples[0].at < at - self.window:
                samples.popleft()

    def of(self, replica: str) -> list[Sample]:
        """The samples of ``replica``, oldest first."""
        return list(self._samples.get(replica, ()))


async def follow(history: LagHistory, last: Callable[[], Snapshot | None], every: float = RESOLUTION_SECONDS) -> None:
    """Record each new measurement as it appears (``last`` only reads memory: this never queries)."""
    while True:
        history.record(last())
        await asyncio.sleep(every)
