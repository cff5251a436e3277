"""Pool instrumentation asyncpg does not have: waiting acquirers, in-use, acquire waits and timeouts.

asyncpg exposes only sizes. What operators need when a service slows down — how many tasks wait
for a connection, how long, how many acquires time out — is counted here, around asyncpg's own
pool (not a fork), at the cost of two clock reads and a few increments per acquire.
"""

from __future__ import annotations

import bisect
import time
from collections import deque

# Histogram bucket upper bounds, seconds (Prometheus convention; +Inf is implicit).
BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WINDOW_SECONDS = 60.0
WINDOW_SAMPLES = 4096
FOLD_SAMPLES = 512


class PoolStats:
    """Counters and acquire-wait distribution of one pool (event loop only: no locking needed)."""

    __slots__ = (
        "waiting",
        "in_use",
        "acquired_total",
        "acquire_timeouts_total",
        "acquire_errors_total",
        "_bucket_counts",
        "_wait_sum",
        "_recent",
        "_pending",
        "_pending_since",
    )

    def __init__(self) -> None:
        self.waiting = 0
        self.in_use = 0
        self.acquired_total = 0
        self.acquire_timeouts_total = 0
        self.acquire_errors_total = 0  # acquires that failed for another reason (connect errors)
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._wait_sum = 0.0
        self._recent: deque[tuple[float, float]] = deque(maxlen=WINDOW_SAMPLES)
        # Waits are appended raw on the hot path and folded into the histogram and the window in
        # batches (at most a second or FOLD_SAMPLES old): a plain list append is the cheapest record.
        self._pending: list[float] = []
        self._pending_since = 0.0

    def observe_wait(self, seconds: float, now: float) -> None:
        """Record how long one acquire waited (successful or not)."""
        pending = self._pending
        if not pending:
            self._pending_since = now
        pending.append(seconds)
        if len(pending) >= FOLD_SAMPLES or now - self._pending_since > 1.0:
            self._fold()

    def _fold(self) -> None:
        pending, self._pending = self._pending, []
        counts, stamp = self._bucket_counts, self._pending_since
        for seconds in pending:
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._wait_sum += sum(pending)
        self._recent.extend((stamp, seconds) for seconds in pending)

    @property
    def bucket_counts(self) -> list[int]:
        """Observations per histogram bucket (the last one is +Inf)."""
        self._fold()
        return self._bucket_counts

    @property
    def wait_sum(self) -> float:
        """Total seconds waited."""
        self._fold()
        return self._wait_sum

    @property
    def wait_count(self) -> int:
        """How many waits were observed in total."""
        return sum(self.bucket_counts)

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """Prometheus-style cumulative buckets: [("0.0001", n), ..., ("+Inf", total)]."""
        out, running = [], 0
        for bound, count in zip((*(f"{b:g}" for b in BUCKETS), "+Inf"), self.bucket_counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    def recent_wait_ms(self, now: float | None = None) -> dict[str, float]:
        """p50, p99 and max acquire wait over the last WINDOW_SECONDS, in milliseconds."""
        self._fold()
        cutoff = (time.monotonic() if now is None else now) - WINDOW_SECONDS
        waits = sorted(w for t, w in self._recent if t >= cutoff)
        if not waits:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}

        def pct(p: float) -> float:
            return round(waits[min(len(waits) - 1, int(p * len(waits)))] * 1000, 3)

        return {"p50": pct(0.5), "p99": pct(0.99), "max": round(waits[-1] * 1000, 3)}
