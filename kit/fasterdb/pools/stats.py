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
        "_recent_waits",
    )

    def __init__(self) -> None:
        self.waiting = 0
        self.acquired_total = 0
        self.acquire_timeouts_total = 0
        self.acquire_errors_total = 0  # acquires that failed for another reason (connect errors)
        self.immediate = 0  # acquires that had nothing to wait for (zero waits), not folded yet
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._wait_sum = 0.0
        # One entry per fold: (when, its waits sorted, how many zero waits); see fold for what
        # is dropped. recent_wait_ms only reads it.
        self._recent: deque[tuple[float, list[float], int]] = deque()
        self._recent_waits = 0  # waits (not zero waits) in _recent
        # Waits are appended raw on the hot path (observe_wait, or the acquire's inlined copy)
        # and folded into the histogram and the window in batches, at least once a second or
        # every FOLD_SAMPLES waits: a plain list append is the cheapest record.
        self.pending: list[float] = []
        self.fold_due = 0.0  # time.monotonic() at which the next observation folds

    def observe_wait(self, seconds: float, now: float) -> None:
        """Record how long one acquire waited (successful or not); ``now`` is time.monotonic()."""
        pending = self.pending
        pending.append(seconds)
        if now >= self.fold_due or len(pending) >= FOLD_SAMPLES:
            self.fold(now)

    def fold(self, now: float | None = None) -> None:
        """Move the pending waits (and the zero waits) into the histogram and the window.

        The batch is sorted once (in C) and split at the bucket bounds, rather than each wait
        looked up and counted in Python: about a quarter of what a wait's record costs.
        """
        stamp = time.monotonic() if now is None else now
        self.fold_due = stamp + 1.0
        pending, self.pending = self.pending, []
        immediate, self.immediate = self.immediate, 0
        counts = self._bucket_counts
        if pending:
            pending.sort()
            below = 0
            for i, bound in enumerate(BUCKETS):  # bucket i: BUCKETS[i-1] < wait <= BUCKETS[i]
                upto = bisect.bisect_right(pending, bound, below)
                counts[i] += upto - below
                below = upto
            counts[-1] += len(pending) - below
            self._wait_sum += sum(pending)
        counts[0] += immediate
        if pending or immediate:
            recent = self._recent
            recent.append((stamp, pending, immediate))
            self._recent_waits += len(pending)
            # Dropped: batches past the window, batches the rest can spare (they still hold
            # WINDOW_SAMPLES waits), and past WINDOW_SAMPLES entries whatever they hold (a pool
            # whose acquires never wait adds one entry per fold).
            oldest = stamp - WINDOW_SECONDS
            while len(recent) > 1 and (
                recent[0][0] < oldest
                or self._recent_waits - len(recent[0][1]) >= WINDOW_SAMPLES
                or len(recent) > WINDOW_SAMPLES
            ):
                self._recent_waits -= len(recent.popleft()[1])

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
        recent = [(batch, n) for t, batch, n in self._recent if t >= cutoff]
        zeros = sum(n for _, n in recent)
        waits = sorted(w for batch, _ in recent for w in batch)
        total = zeros + len(waits)
        if not total:
            return WaitSummary()

        def pct(p: float) -> float:
            rank = min(total - 1, int(p * total))  # zero waits first, then the sorted waits
            return 0.0 if rank < zeros else round(waits[rank - zeros] * 1000, 3)

        return WaitSummary(pct(0.5), pct(0.99), round(waits[-1] * 1000, 3) if waits else 0.0)


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
