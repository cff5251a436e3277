"""A cache of one awaitable's result with a time-to-live, shared by concurrent callers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# How long a failed answer may serve callers when the cache TTL is longer: a failure is re-checked
# on the first call after this, so a cached failure outlives the fault by at most this much (plus
# one check). Still single-flight: concurrent callers share that one re-check.
FAILURE_TTL = 0.05
# With ``ahead``: a call finding the value older than this share of its limit starts the next
# fetch in the background and is answered from the cache. Under a steady stream of calls that is
# one fetch per AHEAD of the TTL (1.33 per TTL) instead of one per TTL, and no caller waits as
# long as a fetch takes less than the rest of the TTL (25 ms of the default 0.1 s).
AHEAD = 0.75


class SingleFlight(Generic[T]):
    """Caches the result of ``fetch`` for ``ttl`` seconds; concurrent misses share one call.

    With ``ahead`` (probes: health checks, replica lag), past ``AHEAD`` of its limit a value is
    still served and the call that finds it so starts the next fetch in the background: a steady
    stream of callers never waits for a fetch. Without (the catalog views, whose statements are
    counted against one per TTL), a caller past the limit waits for the shared fetch.

    ``failed`` tells a failed result (a probe's 503): it is cached for at most ``FAILURE_TTL``
    seconds instead, so recovery shows on the next call rather than a whole TTL later.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        ttl: float,
        failed: Callable[[T], bool] | None = None,
        *,
        ahead: bool = False,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._ahead = ahead
        self._failed = failed
        self._value: T | None = None
        self._stamp = 0.0  # time.monotonic() when _value was produced
        self._value_failed = False
        self._inflight: asyncio.Task[T] | None = None

    @property
    def cached(self) -> T | None:
        """The last value, however old (None before the first fetch)."""
        return self._value

    def age(self) -> float:
        """Seconds since the cached value was produced."""
        return time.monotonic() - self._stamp

    def peek(self, max_age: float | None = None) -> T | None:
        """The cached value if younger than ``max_age`` (default: the TTL), else None — without
        waiting: what ``get`` answers when it need not fetch (it starts a refresh ahead the same way).

        Synchronous, so the callers on a hot path (the readiness probe) skip a coroutine per call.
        """
        value = self._value
        if value is None:
            return None
        limit = self._ttl if max_age is None else max_age
        if self._value_failed and limit > FAILURE_TTL:
            limit = FAILURE_TTL
        age = time.monotonic() - self._stamp
        if age >= limit:
            return None
        if self._ahead and age >= limit * AHEAD and self._inflight is None:
            # Refresh ahead: the next fetch starts now, in the background, so that under a steady
            # stream of calls none waits for one; the value served is still younger than the limit.
            self._inflight = asyncio.ensure_future(self._run())
            self._inflight.add_done_callback(_retrieve)
        return value

    async def get(self, max_age: float | None = None) -> T:
        """The cached value if younger than ``max_age`` (default: the TTL), else a shared fresh fetch.

        A failed value is never served for longer than ``FAILURE_TTL``, whatever ``max_age`` says.
        """
        value = self.peek(max_age)
        if value is not None:
            return value
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._run())
        # shield: one impatient caller being cancelled must not cancel the others' fetch
        return await asyncio.shield(self._inflight)

    async def _run(self) -> T:
        try:
            value = await self._fetch()
            self._value_failed = self._failed is not None and self._failed(value)
            self._value, self._stamp = value, time.monotonic()
            return value
        finally:
            self._inflight = None


def _retrieve(task: asyncio.Task[object]) -> None:
    """A background fetch's failure is seen by the next caller (a new fetch), not logged as lost."""
    if not task.cancelled():
        task.exception()
