"""Router: /health/live (never touches the database) and /health/db (the readiness probe)."""

from __future__ import annotations

from typing import Any

from FasterAPI import FasterRouter, JSONResponse, Query

from service.errors import error_responses
from service.http import json_response, query_bool, query_doc
from service.pool_health import PoolHealth
from service.readiness import db_readiness

_POOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok", "latency_ms", "error"],
    "properties": {
        "name": {"type": "string"},
        "ok": {"type": "boolean"},
        "latency_ms": {"type": "number", "nullable": True},
        "error": {"type": "string", "nullable": True, "description": "a short category, never driver text"},
    },
}
_DB_HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "primary", "checked_at", "age_ms"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "primary": _POOL_SCHEMA,
        "replicas": {"type": "array", "items": _POOL_SCHEMA},
        "checked_at": {"type": "string", "format": "date-time"},
        "age_ms": {"type": "integer", "minimum": 0},
    },
}


def health_router(health: PoolHealth) -> FasterRouter:
    """The health endpoints, reading state only through ``health``."""
    router = FasterRouter(tags=["health"])
    ok_json = {"application/json": {"schema": _DB_HEALTH_SCHEMA}}

    @router.get(
        "/health/live",
        summary="Liveness: the process serves HTTP (no database involved)",
        openapi_extra={
            "responses": {
                "200": {
                    "description": "alive",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"type": "string", "enum": ["ok"]}},
                            }
                        }
                    },
                }
            }
        },
    )
    async def health_live() -> JSONResponse:
        """Always 200 while the process runs; Kubernetes' liveness probe must never depend on the DB."""
        return json_response({"status": "ok"})

    @router.get(
        "/health/db",
        summary="Readiness: the primary answers a query within FASTERDB_HEALTH_TIMEOUT",
        openapi_extra={
            "parameters": [query_doc("replicas", {"type": "boolean"}, "true: add the replica pools' reachability")],
            "responses": {
                "200": {"description": "the primary is usable", "content": ok_json},
                "503": {"description": "the primary is not usable", "content": ok_json},
                **error_responses(400),
            },
        },
    )
    async def health_db(
        replicas: str | None = Query(None, description="true: add the replica pools' reachability"),
    ) -> JSONResponse:
        """200 when the primary answers in time, else 503; one cached check serves all probes per TTL."""
        include = query_bool(replicas, "replicas")
        reason, body = await db_readiness(health, include)
        return json_response(body, 200 if reason is None else 503)

    return router
