"""Router: /pools and /pools/stream — live statistics of every pool, PgBouncer ``SHOW POOLS`` style."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import msgspec
from FasterAPI import EventSourceResponse, Response

from fasterdb.contract import PoolBody, PoolsBody, WaitMs
from fasterdb.contract import timestamp as iso
from fasterdb.pools.managed import Databases

from ..health.checks import PoolHealth
from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, number

MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0
EVENT = "pools"  # the event name of every Server-Sent Event of /pools/stream
RETRY_MS = 3000  # how long an EventSource client waits before reconnecting after a lost stream

POOLS = Operation(
    "GET",
    "/pools",
    "pools",
    "Live statistics of every pool: sizes, in use, waiting, acquire waits and timeouts",
    "pools",
    (Reply(200, "pool statistics, primary first", PoolsBody),),
)
STREAM = Operation(
    "GET",
    "/pools/stream",
    "pools_stream",
    "Server-Sent Events: one /pools document per interval",
    "pools",
    (
        Reply(
            200,
            f"text/event-stream: events named '{EVENT}', each with an increasing 'id' and a /pools "
            f"document (JSON) as 'data'; the first also carries 'retry: {RETRY_MS}'",
            None,
            media_type="text/event-stream",
            schema={"type": "string"},
        ),
    ),
    params=(
        Param(
            "interval",
            "query",
            {"type": "number", "minimum": MIN_INTERVAL, "maximum": MAX_INTERVAL, "default": 1},
            "seconds between documents",
            number(MIN_INTERVAL, MAX_INTERVAL),
            1.0,
        ),
    ),
)


def pools_body(databases: Databases, health: PoolHealth) -> PoolsBody:
    """The /pools body. ``ready`` is the pool's latest health check, the same one /health/db serves."""
    pools = []
    for pool in databases:
        check = health.last(pool.name)
        s = pool.snapshot()
        wait = s.acquire_wait_ms
        pools.append(
            PoolBody(
                name=pool.name,
                role=pool.role,
                ready=bool(check and check.ok),
                error=check.error if check else "not checked yet",
                min_size=s.min_size,
                max_size=s.max_size,
                size=s.size,
                idle=s.idle,
                in_use=s.in_use,
                waiting=s.waiting,
                acquired_total=s.acquired_total,
                acquire_timeouts_total=s.acquire_timeouts_total,
                acquire_errors_total=s.acquire_errors_total,
                acquire_wait_ms=WaitMs(wait.p50, wait.p99, wait.max),
            )
        )
    return PoolsBody(collected_at=iso(time.time()), pools=pools)


def register(api: Api, databases: Databases, health: PoolHealth, stopping: Callable[[], bool]) -> None:
    """The pool statistics endpoints; ``stopping`` ends streams when the sidecar shuts down."""

    async def fresh() -> PoolsBody:
        # Refresh readiness through the single-flight cache (at most one query per pool per TTL).
        await asyncio.gather(*(health.check(p.name) for p in databases))
        return pools_body(databases, health)

    @api.route(POOLS)
    async def pools(call: Call) -> Response:
        """One document with every pool (primary first, then replicas)."""
        return json_reply(await fresh())

    @api.route(STREAM)
    async def stream(call: Call) -> EventSourceResponse:
        """Streams /pools documents until the client goes away or the sidecar stops."""
        every: float = call.params["interval"]

        async def events() -> AsyncIterator[dict[str, str]]:
            if call.head:
                return
            loop = asyncio.get_running_loop()
            next_at, number_ = loop.time(), 0
            while not stopping():
                number_ += 1
                event = {"id": str(number_), "event": EVENT, "data": msgspec.json.encode(await fresh()).decode()}
                if number_ == 1:
                    event["retry"] = str(RETRY_MS)
                yield event
                next_at += every
                # Sleep in short steps so a shutdown ends the stream promptly.
                while not stopping() and (left := next_at - loop.time()) > 0:
                    await asyncio.sleep(min(left, 0.25))

        return EventSourceResponse(events())
