"""Router: /health/replicas — replica lag in bytes and seconds against thresholds (200 or 503)."""

from __future__ import annotations

from typing import Any

from FasterAPI import FasterRouter, JSONResponse, Query

from service.errors import BadRequest, error_responses
from service.http import json_response, query_doc, query_float, query_size
from service.replica_lag import LagMeter, Thresholds, evaluate

_REPLICA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "ok", "state", "lag_bytes", "receive_lag_bytes", "lag_seconds", "error"],
    "properties": {
        "name": {"type": "string"},
        "ok": {"type": "boolean"},
        "state": {
            "type": "string",
            "enum": ["streaming", "catching_up", "replay_paused", "disconnected", "down", "not_replica"],
        },
        "lag_bytes": {"type": "integer", "nullable": True},
        "receive_lag_bytes": {"type": "integer", "nullable": True},
        "lag_seconds": {"type": "number", "nullable": True},
        "error": {"type": "string", "nullable": True},
    },
}
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "max_lag_bytes", "max_lag_seconds", "primary_lsn", "replicas"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "lagging", "unavailable"]},
        "max_lag_bytes": {"type": "integer"},
        "max_lag_seconds": {"type": "number"},
        "primary_lsn": {"type": "string", "nullable": True},
        "replicas": {"type": "array", "items": _REPLICA_SCHEMA},
    },
}
# What the server accepts (service.sizes), narrowed to values that cannot overflow.
_SIZE_DOC = {"type": "string", "pattern": r"^([0-9]{1,9}\s?([kKmMgG]i?[bB]|[bB])?|[0-9]{1,6}\s?[tT]i?[bB])$"}


def replicas_router(lag: LagMeter, defaults: Thresholds) -> FasterRouter:
    """The replica lag endpoint, reading state only through ``lag``."""
    router = FasterRouter(tags=["health"])
    content = {"application/json": {"schema": _SCHEMA}}
    names = [pool.name for pool in lag.databases.replicas]
    name_doc: dict[str, Any] = {"type": "string", "enum": names} if names else {"type": "string"}

    @router.get(
        "/health/replicas",
        summary="Replica lag: 200 when every replica is within the thresholds, else 503",
        openapi_extra={
            "parameters": [
                query_doc("max_lag_bytes", _SIZE_DOC, "size such as 16MB (1024-based); default from settings"),
                query_doc(
                    "max_lag_seconds",
                    {"type": "number", "minimum": 0, "maximum": 86400},
                    "seconds; default from settings",
                ),
                query_doc("replica", name_doc, "check only the replica with this name"),
            ],
            "responses": {
                "200": {"description": "every replica is within the thresholds", "content": content},
                "503": {"description": "a replica lags, is down or is disconnected", "content": content},
                **error_responses(400),
            },
        },
    )
    async def health_replicas(
        max_lag_bytes: str | None = Query(None),
        max_lag_seconds: str | None = Query(None),
        replica: str | None = Query(None),
    ) -> JSONResponse:
        """Lag of each replica in bytes and seconds, judged against the thresholds."""
        thresholds = Thresholds(
            query_size(max_lag_bytes, "max_lag_bytes", defaults.max_lag_bytes),
            query_float(max_lag_seconds, "max_lag_seconds", defaults.max_lag_seconds),
        )
        if replica is not None and replica not in names:
            known = ", ".join(names) or "none configured"
            raise BadRequest(f"no replica named {replica!r} (replicas: {known})")
        status, body = evaluate(await lag.snapshot(), thresholds, replica)
        return json_response(body, 200 if status == "ok" else 503)

    return router
