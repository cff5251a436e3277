"""Pool instrumentation asyncpg does not have: waiting acquirers, in-use, acquire waits and timeouts.

asyncpg exposes only sizes. What operators need when a service slows down — how many tasks wait
for a connection, how long, how many acquires time out — is counted here, around asyncpg's own
pool (not a fork): an acquire that found a connection queued costs one increment (a zero wait);
one that had to wait, two clock reads and a list append.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from dataclasses import dataclass

# Histogram bucket upper bounds, seconds (Prometheus convention; +Inf is implicit).
BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WINDOW_SECONDS = 60.0
WINDOW_SAMPLES = 4096
FOLD_SAMPLES = 512


@dataclass(frozen=True)
class WaitSummary:
    """Acquire waits over the last WINDOW_SECONDS, in milliseconds."""

    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0


class PoolStats:
    """Counters and acquire-wait distribution of one pool (event loop only: no locking needed)."""

    __slots__ = (
        "waiting",
        "acquired_total",
        "acquire_timeouts_total",
        "acquire_errors_total",
        "immediate",
        "pending",
        "fold_due",
        "_bucket_counts",
        "_wait_sum",
        "_recent",
    )

    def __init__(self) -> None:
        self.waiting = 0
        self.acquired_total = 0
        self.acquire_timeouts_total = 0
        self.acquire_errors_total = 0  # acquires that failed for another reason (connect errors)
        self.immediate = 0  # acquires that had nothing to wait for (zero waits), not folded yet
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._wait_sum = 0.0
        # (when, seconds waited, how many such waits): zero waits arrive in bulk, one entry per fold
        self._recent: deque[tuple[float, float, int]] = deque(maxlen=WINDOW_SAMPLES)
        # Waits are appended raw on the hot path (observe_wait) and folded into the histogram and
        # the window in batches, at least once a second or every FOLD_SAMPLES waits: a plain list
        # append is the cheapest record.
        self.pending: list[float] = []
        self.fold_due = 0.0  # time.monotonic() at which the next observation folds

    def observe_wait(self, seconds: float, now: float) -> None:
        """Record how long one acquire waited (successful or not); ``now`` is time.monotonic()."""
        pending = self.pending
        pending.append(seconds)
        if now >= self.fold_due or len(pending) >= FOLD_SAMPLES:
            self.fold(now)

    def fold(self, now: float | None = None) -> None:
        """Move the pending waits (and the zero waits) into the histogram and the window."""
        stamp = time.monotonic() if now is None else now
        self.fold_due = stamp + 1.0
        pending, self.pending = self.pending, []
        counts = self._bucket_counts
        for seconds in pending:
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._wait_sum += sum(pending)
        self._recent.extend((stamp, seconds, 1) for seconds in pending)
        immediate, self.immediate = self.immediate, 0
        if immediate:
            counts[0] += immediate
            self._recent.append((stamp, 0.0, immediate))

    @property
    def bucket_counts(self) -> list[int]:
        """Observations per histogram bucket (the last one is +Inf)."""
        self.fold()
        return self._bucket_counts

    @property
    def wait_sum(self) -> float:
        """Total seconds waited."""
        self.fold()
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

    def recent_wait_ms(self, now: float | None = None) -> WaitSummary:
        """p50, p99 and max acquire wait over the last WINDOW_SECONDS, in milliseconds."""
        self.fold()
        cutoff = (time.monotonic() if now is None else now) - WINDOW_SECONDS
        waits = sorted((w, n) for t, w, n in self._recent if t >= cutoff)
        total = sum(n for _, n in waits)
        if not total:
            return WaitSummary()

        def pct(p: float) -> float:
            rank, seen = min(total - 1, int(p * total)), 0
            for wait, n in waits:
                seen += n
                if seen > rank:
                    return round(wait * 1000, 3)
            return round(waits[-1][0] * 1000, 3)

        return WaitSummary(pct(0.5), pct(0.99), round(waits[-1][0] * 1000, 3))


@dataclass(frozen=True)
class PoolSnapshot:
    """One pool's sizes and acquire statistics at one moment (what /pools and /metrics show)."""

    min_size: int
    max_size: int
    size: int  # connections open
    idle: int  # open and not acquired
    waiting: int  # tasks waiting for a connection
    acquired_total: int
    acquire_timeouts_total: int
    acquire_errors_total: int
    acquire_wait_ms: WaitSummary

    @property
    def in_use(self) -> int:
        """Acquired and not yet released (asyncpg counts them)."""
        return self.size - self.idle
