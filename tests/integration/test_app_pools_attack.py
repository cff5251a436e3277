"""POST /pools/report attacked: bodies from outside the pod, and reports that would flood /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_app_pools import _sidecar_app

LIMIT = 256 * 1024  # the endpoint's body limit


def test_a_report_body_from_outside_the_pod_is_not_read_without_bound(sidecar_env: dict[str, str]) -> None:
    # Reports are refused to non-loopback peers (403), but the body is read first — and with
    # chunked transfer encoding (no Content-Length to refuse early) all of it, whatever its size,
    # into memory, before the 256 KB limit is checked: anyone who reaches the Service can make the
    # sidecar buffer as much as they send.
    app = _sidecar_app(sidecar_env)
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(160):  # 10 MB, bounded
            sent += 64 * 1024
            yield b" " * (64 * 1024)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            return await client.post("/pools/report", content=body())

    answer = asyncio.run(post())
    assert answer.status_code in (403, 413), answer.text
    assert sent <= 2 * LIMIT, f"the sidecar read {sent / 2**20:.1f} MB of a refused body"


def test_a_report_cannot_create_metric_series_without_bound(sidecar_env: dict[str, str]) -> None:
    # The kit reports a fixed set of counters (route:<reason>, reads:<pool>, read_after:<outcome>,
    # ...). The sidecar exports whatever keys a report carries as label values: one report of
    # 256 KB is about ten thousand series, and 64 processes make over half a million.
    app = _sidecar_app(sidecar_env)
    counters = {f"route:r{i:05d}": 1 for i in range(5000)} | {"route:replica": 3, "reads:primary": 2}
    pool = {
        "name": "primary",
        "role": "primary",
        "ready": True,
        "error": None,
        "min_size": 1,
        "max_size": 3,
        "size": 1,
        "idle": 1,
        "in_use": 0,
        "waiting": 0,
        "acquired_total": 2,
        "acquire_timeouts_total": 0,
        "acquire_errors_total": 0,
        "acquire_wait_ms": {"p50": 0, "p99": 0, "max": 0},
    }
    report = {"app": "flood", "instance": "h:1", "interval": 60, "pools": [pool], "counters": counters}

    async def scenario() -> tuple[int, str]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            status = (await client.post("/pools/report", json=report)).status_code
            return status, (await client.get("/metrics")).text

    status, text = asyncio.run(scenario())
    series = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.labels.get("app") == "flood" and s.name.startswith("fasterdb_app_")
    ]
    if status == 202:  # accepted: only the known figures become series
        assert len(series) <= 50, f"{len(series)} series from one report"
        assert any(s.labels.get("reason") == "replica" and s.value == 3 for s in series)
    else:  # or the report is refused as not the kit's
        assert status == 422 and not series
