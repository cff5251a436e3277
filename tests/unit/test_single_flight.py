"""The single-flight cache: N concurrent callers cause one fetch, and a failure does not outlive its fault."""

from __future__ import annotations

import asyncio

from fasterdb_sidecar.single_flight import FAILURE_TTL, SingleFlight


class Source:
    """A fetch that counts its calls, answers what ``value`` says, and waits for ``gate`` when set."""

    def __init__(self, value: bool) -> None:
        self.value = value
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> bool:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)
        return self.value


def _cache(source: Source, ttl: float = 60.0, ahead: bool = False) -> SingleFlight[bool]:
    return SingleFlight(source, ttl, failed=lambda ok: not ok, ahead=ahead)


async def _gated_callers(cache: SingleFlight[bool], source: Source, n: int) -> list[bool]:
    """``n`` concurrent callers while the fetch is held at a gate, then the gate opens: their answers."""
    source.gate = asyncio.Event()
    callers = [asyncio.ensure_future(cache.get()) for _ in range(n)]
    await asyncio.sleep(0.01)
    source.gate.set()
    return list(await asyncio.gather(*callers))


def test_concurrent_callers_share_one_fetch_ok_and_failed() -> None:
    async def run() -> None:
        for value in (True, False):
            source = Source(value)
            assert await _gated_callers(_cache(source), source, 200) == [value] * 200
            assert source.calls == 1

    asyncio.run(run())


def test_a_success_serves_for_the_ttl() -> None:
    async def run() -> None:
        source = Source(True)
        cache = _cache(source)
        await cache.get()
        await asyncio.sleep(FAILURE_TTL * 2)
        assert await cache.get() is True
        assert source.calls == 1

    asyncio.run(run())


def test_a_failure_is_rechecked_once_after_the_failure_ttl_even_under_a_long_ttl() -> None:
    async def run() -> None:
        source = Source(False)
        cache = _cache(source)
        assert await cache.get() is False
        assert await cache.get() is False  # inside FAILURE_TTL: served from the cache
        assert source.calls == 1
        source.value = True  # the fault ends
        await asyncio.sleep(FAILURE_TTL * 1.5)
        # The first callers after FAILURE_TTL: still one shared re-check, and it sees the recovery.
        assert await _gated_callers(cache, source, 100) == [True] * 100
        assert source.calls == 2
        assert await cache.get() is True and source.calls == 2  # now cached for the long TTL

    asyncio.run(run())


def test_max_age_cannot_stretch_a_failure() -> None:
    async def run() -> None:
        source = Source(False)
        cache = _cache(source)
        await cache.get()
        await asyncio.sleep(FAILURE_TTL * 1.5)
        await cache.get(max_age=30)
        assert source.calls == 2

    asyncio.run(run())


def test_a_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    async def run() -> None:
        source = Source(True)
        source.gate = asyncio.Event()
        cache = _cache(source)
        impatient = asyncio.ensure_future(cache.get())
        patient = asyncio.ensure_future(cache.get())
        await asyncio.sleep(0.01)
        impatient.cancel()
        source.gate.set()
        assert await patient is True
        assert source.calls == 1

    asyncio.run(run())


def test_with_ahead_a_value_near_its_limit_is_served_while_the_next_fetch_runs() -> None:
    async def run() -> None:
        source = Source(True)
        cache, plain = _cache(source, ttl=60, ahead=True), _cache(Source(True), ttl=60)
        assert await cache.get() is True and source.calls == 1
        await plain.get()
        source.gate = asyncio.Event()  # the next fetch will not finish on its own
        cache._stamp -= 46  # 46 s old: past AHEAD of the TTL, within it (no sleep on a loaded machine)
        plain._stamp -= 59
        assert await plain.get() is True  # without ahead: served, no fetch started
        assert plain._inflight is None
        callers = await asyncio.wait_for(asyncio.gather(*(cache.get() for _ in range(50))), 1)
        assert callers == [True] * 50  # answered from the cache, none waited for the fetch
        assert source.calls == 2  # one background fetch for all of them
        source.value = False
        source.gate.set()
        for _ in range(100):  # the background fetch lands (bounded wait for observable state)
            if cache.cached is False:
                break
            await asyncio.sleep(0.01)
        assert await cache.get() is False and source.calls == 2

    asyncio.run(run())


def test_peek_answers_what_get_would_without_fetching() -> None:
    """peek (the readiness probe's synchronous path) never fetches: None before the first value,
    past the TTL, and for a failure past FAILURE_TTL; the cached value otherwise."""

    async def run() -> None:
        source = Source(True)
        cache = _cache(source, ttl=60.0)
        assert cache.peek() is None and source.calls == 0
        await cache.get()
        assert cache.peek() is True and source.calls == 1
        assert cache.peek(max_age=0.0) is None and source.calls == 1  # too old for this caller: no fetch either

        failing = Source(False)
        failed = _cache(failing, ttl=60.0)
        await failed.get()
        assert failed.peek() is False
        await asyncio.sleep(FAILURE_TTL * 2)
        assert failed.peek() is None and failing.calls == 1  # a cached failure expires after FAILURE_TTL

    asyncio.run(run())


def test_peek_refreshes_ahead_in_the_background() -> None:
    """Past AHEAD of the TTL, peek serves the value and starts the next fetch, as get does."""

    async def run() -> None:
        source = Source(True)
        cache = _cache(source, ttl=60.0, ahead=True)
        await cache.get()
        cache._stamp -= 60.0 * 0.8  # the value is now past AHEAD (0.75) of the TTL, within it
        assert cache.peek() is True and source.calls == 1
        async with asyncio.timeout(5):
            while source.calls < 2:
                await asyncio.sleep(0.001)

    asyncio.run(run())
