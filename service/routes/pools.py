"""Router: /pools and /pools/stream — live statistics of every pool, PgBouncer ``SHOW POOLS`` style."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from FasterAPI import EventSourceResponse, FasterRouter, JSONResponse, Query

from service.db.checks import iso
from service.db.pool import Databases
from service.errors import error_responses
from service.http import json_response, query_doc, query_float
from service.pool_health import PoolHealth

_COUNTS = (
    "min_size",
    "max_size",
    "size",
    "idle",
    "in_use",
    "waiting",
    "acquired_total",
    "acquire_timeouts_total",
)
_POOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "role", "ready", *_COUNTS, "acquire_wait_ms"],
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["primary", "replica"]},
        "ready": {"type": "boolean"},
        "error": {"type": "string", "nullable": True},
        **{k: {"type": "integer"} for k in (*_COUNTS, "acquire_errors_total")},
        "acquire_wait_ms": {
            "type": "object",
            "required": ["p50", "p99", "max"],
            "properties": {k: {"type": "number"} for k in ("p50", "p99", "max")},
        },
    },
}
POOLS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["collected_at", "pools"],
    "properties": {
        "collected_at": {"type": "string", "format": "date-time"},
        "pools": {"type": "array", "items": _POOL_SCHEMA},
    },
}
# One Server-Sent Event: "event: pools", and "data:" holding a /pools document as JSON.
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["pools"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "a /pools document",
        },
    },
}
MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0


def pools_document(databases: Databases, health: PoolHealth) -> dict[str, Any]:
    """The /pools body. ``ready`` is the pool's latest health check, the same one /health/db serves."""
    pools = []
    for pool in databases:
        check = health.last(pool.name)
        pools.append(
            {
                "name": pool.name,
                "role": pool.role,
                "ready": bool(check and check.ok),
                "error": (check.error if check else "not checked yet"),
                **pool.report(),
            }
        )
    return {"collected_at": iso(time.time()), "pools": pools}


def pools_router(databases: Databases, health: PoolHealth, stopping: Callable[[], bool]) -> FasterRouter:
    """The pool statistics endpoints; ``stopping`` ends streams when the sidecar shuts down."""
    router = FasterRouter(tags=["pools"])

    async def fresh_document() -> dict[str, Any]:
        # Refresh readiness through the single-flight cache (at most one query per pool per TTL).
        await asyncio.gather(*(health.check(p.name) for p in databases))
        return pools_document(databases, health)

    @router.get(
        "/pools",
        summary="Live statistics of every pool: sizes, in use, waiting, acquire waits and timeouts",
        openapi_extra={
            "responses": {
                "200": {
                    "description": "pool statistics",
                    "content": {"application/json": {"schema": POOLS_SCHEMA}},
                }
            }
        },
    )
    async def pools() -> JSONResponse:
        """One document with every pool (primary first, then replicas)."""
        return json_response(await fresh_document())

    @router.get(
        "/pools/stream",
        summary="Server-Sent Events: one /pools document per interval",
        openapi_extra={
            "parameters": [
                query_doc(
                    "interval",
                    {"type": "number", "minimum": MIN_INTERVAL, "maximum": MAX_INTERVAL, "default": 1},
                    "seconds between documents",
                )
            ],
            "responses": {
                "200": {
                    "description": "text/event-stream; each event's data is a /pools document",
                    "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
                },
                **error_responses(400),
            },
        },
    )
    async def pools_stream(interval: str | None = Query(None)) -> EventSourceResponse:
        """Streams /pools documents until the client goes away or the sidecar stops."""
        every = query_float(interval, "interval", 1.0, minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)

        async def events() -> AsyncIterator[dict[str, str]]:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while not stopping():
                yield {"event": "pools", "data": json.dumps(await fresh_document())}
                next_at += every
                # Sleep in short steps so a shutdown ends the stream promptly.
                while not stopping() and (left := next_at - loop.time()) > 0:
                    await asyncio.sleep(min(left, 0.25))

        return EventSourceResponse(events())

    return router
