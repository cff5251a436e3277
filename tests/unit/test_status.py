"""The status page's pieces without a server: the bounded lag history, the shared feed, the renderer."""

from __future__ import annotations

import asyncio
import re

from fasterdb_sidecar.replication.lag import ReplicaLag, Snapshot, Thresholds
from fasterdb_sidecar.status.feed import Feed, TooManyStreams
from fasterdb_sidecar.status.history import LagHistory
from fasterdb_sidecar.status.page import content_security_policy, document
from fasterdb_sidecar.status.view import DatabaseView, JobsView, PrimaryView, ReplicaView, StatusView


def _snapshot(at: float, lag: int | None) -> Snapshot:
    state = "replay_paused" if lag else "streaming"
    return Snapshot(0, None, [ReplicaLag("r1", state, lag, 0, 0.0 if lag is not None else None, None)], at)


def test_the_history_keeps_one_sample_per_second_for_the_window_only() -> None:
    history = LagHistory(window=300, resolution=1)
    for i in range(4000):  # measured every 0.25 s for 1,000 s
        history.record(_snapshot(1000 + i * 0.25, i))
    samples = history.of("r1")
    assert 300 <= len(samples) <= 301
    assert samples[-1].at == 1000 + 3999 * 0.25 and samples[0].at >= samples[-1].at - 300
    assert all(b.at - a.at >= 0.75 for a, b in zip(samples, samples[1:], strict=False))
    history.record(_snapshot(samples[-1].at, 7))  # the same measurement again: ignored
    assert history.of("r1")[-1].lag_bytes == 3999


def test_one_producer_for_every_stream_and_none_without_streams() -> None:
    async def scenario() -> None:
        builds = 0

        async def build() -> int:
            nonlocal builds
            builds += 1
            return builds

        feed: Feed[int] = Feed(build, 0.01, max_streams=2, stopping=lambda: False)
        first, second = feed.values(), feed.values()
        assert await anext(first) == 1 and await anext(second) in (1, 2)
        assert feed.streams == 2 and feed.running
        try:
            feed.admit()
        except TooManyStreams as exc:
            assert exc.status == 503 and exc.code == "too_many_streams"
        else:
            raise AssertionError("a third stream was admitted")
        await first.aclose()
        assert feed.running
        await second.aclose()
        assert feed.streams == 0 and not feed.running
        done = builds
        await asyncio.sleep(0.05)
        assert builds == done  # nothing runs without a listener

    asyncio.run(scenario())


def test_streams_end_when_the_sidecar_drains() -> None:
    async def scenario() -> None:
        draining = False

        async def build() -> str:
            return "view"

        feed: Feed[str] = Feed(build, 0.01, max_streams=4, stopping=lambda: draining)
        values = feed.values()
        assert await anext(values) == "view"
        draining = True
        async with asyncio.timeout(2):
            assert [v async for v in values] == []  # ends (at most one more value)
        assert feed.streams == 0

    asyncio.run(scenario())


def _view(name: str) -> StatusView:
    replica = ReplicaView(name, "replay_paused", False, 20 * 1024**2, 0, 12.5, None, [])
    return StatusView(
        1_800_000_000.0,
        "degraded",
        f"{name}: replay_paused",
        PrimaryView(True, 1.2, None),
        [replica],
        Thresholds(16 * 1024**2, 10),
        [{"name": "primary", "role": "primary", "ready": True, "source": "app", "app": "<shop>"}],
        DatabaseView(connections=3, usable=97, headroom=94),
        JobsView(True, "replica_lag", 4.0),
    )


def test_the_page_escapes_what_it_shows_and_allows_only_its_own_script() -> None:
    html = document(_view('<img src=x onerror="alert(1)">'), "0.1.0")
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "&lt;shop&gt;" in html and 'data-source="app"' in html  # application pools, grouped and escaped
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from another origin
    assert 'data-stream="status/stream"' in html and 'href="docs"' in html  # relative: works under a prefix
    csp = content_security_policy()
    assert "default-src 'none'" in csp and csp.count("'sha256-") == 2 and "unsafe" not in csp
    assert "20.0 MB" in html and "12 s" in html and "replica_lag" in html
