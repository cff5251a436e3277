import time

import pytest

from fasterdb.pools.deadlines import Deadlines
from fasterdb.pools.stats import BUCKETS, FOLD_SAMPLES, WINDOW_SAMPLES, WINDOW_SECONDS, PoolStats, WaitSummary


def test_histogram_and_window_see_every_wait() -> None:
    stats = PoolStats()
    now = time.monotonic()  # fold() without a time stamps with the real monotonic clock
    for i in range(FOLD_SAMPLES + 10):
        stats.observe_wait(0.3 if i % 100 == 0 else 0.0001, now + i / 10_000)
    buckets = dict(stats.cumulative_buckets())
    assert buckets["+Inf"] == stats.wait_count == FOLD_SAMPLES + 10
    assert buckets["+Inf"] - buckets["0.25"] == 6  # the 0.3 s waits
    assert stats.wait_sum == pytest.approx(6 * 0.3 + (FOLD_SAMPLES + 4) * 0.0001)
    window = stats.recent_wait_ms(now=now + 1)
    assert window.max == 300.0 and window.p50 == 0.1
    assert stats.recent_wait_ms(now=now + WINDOW_SECONDS + 5) == WaitSummary(0.0, 0.0, 0.0)
    assert len(buckets) == len(BUCKETS) + 1


def test_pending_waits_are_folded_within_a_second() -> None:
    stats = PoolStats()
    stats.observe_wait(0.5, 10.0)
    stats.observe_wait(0.5, 11.5)  # more than a second later: the first batch is stamped 10.0
    assert stats._recent and stats._recent[0] == (10.0, [0.5], 0)


async def _expire() -> bool:
    import asyncio

    deadlines = Deadlines()
    task = asyncio.current_task()
    assert task is not None
    import time

    deadlines.enter(task, time.monotonic() + 0.05)
    try:
        await asyncio.sleep(5)  # the wait the 0.05 s deadline cuts off: never slept in full
    except asyncio.CancelledError:
        return deadlines.expired(task)
    finally:
        deadlines.leave(task)
    return False


def test_deadline_cancels_only_its_task() -> None:
    import asyncio
    import time

    started = time.monotonic()
    assert asyncio.run(_expire()) is True
    assert time.monotonic() - started < 1.0


def test_zero_waits_are_counted_in_bulk() -> None:
    stats = PoolStats()
    stats.immediate = 98  # acquires that found a connection free (the acquire's fast path)
    stats.observe_wait(0.2, time.monotonic())
    stats.observe_wait(0.4, time.monotonic())
    buckets = dict(stats.cumulative_buckets())
    assert buckets["0.0001"] == 98 and buckets["+Inf"] == stats.wait_count == 100
    assert stats.recent_wait_ms() == WaitSummary(0.0, 400.0, 400.0)  # rank 99 of 100


def test_folded_buckets_match_each_wait_looked_up_alone() -> None:
    """The batch fold (sorted, split at the bounds) counts every wait in the bucket bisect_left
    of the bounds gives it, bounds themselves included (Prometheus' ``le``)."""
    import bisect
    import random

    rng = random.Random(7)
    waits = [rng.choice([*BUCKETS, 0.0, 0.00005, 20.0]) for _ in range(300)] + [rng.random() * 12 for _ in range(700)]
    stats = PoolStats()
    for i, wait in enumerate(waits):
        stats.observe_wait(wait, 100.0 + i / 10_000)
    expected = [0] * (len(BUCKETS) + 1)
    for wait in waits:
        expected[bisect.bisect_left(BUCKETS, wait)] += 1
    assert stats.bucket_counts == expected


def test_the_window_keeps_the_latest_waits() -> None:
    """Past WINDOW_SAMPLES waits the oldest batches leave the window; the latest always stay."""
    stats = PoolStats()
    start = time.monotonic()  # the clock fold() reads when a reader folds what is pending
    for i in range(3 * WINDOW_SAMPLES):
        stats.observe_wait(1.0 if i < 2 * WINDOW_SAMPLES else 0.001, start + i / 100_000)
    summary = stats.recent_wait_ms(now=start + 1)
    assert summary.p50 == 1.0  # ms: the latest WINDOW_SAMPLES waits are all 1 ms ...
    assert (
        WINDOW_SAMPLES <= stats._recent_waits <= WINDOW_SAMPLES + FOLD_SAMPLES
    )  # ... at most one older batch beside them


def test_the_window_stays_bounded_when_nothing_waits() -> None:
    """A pool whose acquires never wait folds one entry of zero waits a second: old entries go."""
    stats = PoolStats()
    for second in range(3 * WINDOW_SAMPLES):
        stats.immediate = 5
        stats.fold(1000.0 + second)
    assert len(stats._recent) <= WINDOW_SECONDS + 1
    assert stats.recent_wait_ms(now=1000.0 + 3 * WINDOW_SAMPLES) == WaitSummary(0.0, 0.0, 0.0)
