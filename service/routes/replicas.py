"""Router: /health/replicas — replica lag in bytes and seconds against thresholds (200 or 503)."""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec
from FasterAPI import Response

from fasterdb.contract import ReplicaBody, ReplicasBody
from fasterdb.lsn import format_lsn
from fasterdb.sizes import SIZE_PATTERN

from ..http.api import Api, Call, LastReply, Operation, Reply
from ..http.params import Param, ParamError, choice, number, size
from ..replication.lag import LagMeter, Snapshot, Thresholds, evaluate

# Exactly the parser's grammar (fasterdb.sizes); values that come to fractional bytes or overflow
# match it and are still a 400 with the reason.
SIZE_SCHEMA = {"type": "string", "pattern": SIZE_PATTERN}


def _no_replicas(raw: str) -> str:
    raise ParamError("names no replica: none are configured")


def register(api: Api, lag: LagMeter, defaults: Thresholds) -> None:
    """The replica lag endpoint, reading state only through ``lag``."""
    names = [pool.name for pool in lag.databases.replicas]
    name_schema: dict[str, Any] = {"type": "string", "enum": names} if names else {"type": "string"}
    op = Operation(
        "GET",
        "/health/replicas",
        "health_replicas",
        "Replica lag: 200 when every replica is within the thresholds, else 503",
        "health",
        (
            Reply(200, "every replica is within the thresholds", ReplicasBody),
            Reply(503, "a replica lags, is down, disconnected, promoted, or its lag is unknown", ReplicasBody),
        ),
        params=(
            Param(
                "max_lag_bytes",
                "query",
                SIZE_SCHEMA,
                "size such as 16MB (1024-based); default FASTERDB_MAX_LAG_BYTES",
                size,
                defaults.max_lag_bytes,
            ),
            Param(
                "max_lag_seconds",
                "query",
                {"type": "number", "minimum": 0, "maximum": 86400},
                "seconds; default FASTERDB_MAX_LAG_SECONDS",
                number(0, 86400),
                defaults.max_lag_seconds,
            ),
            Param(
                "replica", "query", name_schema, "check only this replica", choice(*names) if names else _no_replicas
            ),
        ),
    )

    # Probes within the same millisecond of the same measurement, with the same parameters, get
    # the same answer object (as /health/db).
    last = LastReply()

    @api.route(op)
    async def replicas(call: Call) -> Response:
        """Lag of each replica in bytes and seconds, judged against the thresholds."""
        params = call.params
        snapshot = lag.fresh() or await lag.snapshot()
        age_ms = max(0, int((time.time() - snapshot.measured_at) * 1000))
        made_of = (snapshot, age_ms, params["max_lag_bytes"], params["max_lag_seconds"], params["replica"])
        reply = last.get(made_of)
        if reply is None:
            thresholds = Thresholds(params["max_lag_bytes"], params["max_lag_seconds"])
            status, body = _body(snapshot, thresholds, params["replica"], age_ms)
            reply = last.keep(made_of, msgspec.json.encode(body), 200 if status == "ok" else 503)
        return reply


def _body(
    snapshot: Snapshot, thresholds: Thresholds, only: str | None, age_ms: int
) -> tuple[Literal["ok", "lagging", "unavailable"], ReplicasBody]:
    status, judged = evaluate(snapshot, thresholds, only)
    body = ReplicasBody(
        status=status,
        max_lag_bytes=thresholds.max_lag_bytes,
        max_lag_seconds=thresholds.max_lag_seconds,
        primary_lsn=format_lsn(snapshot.primary_lsn),
        replicas=[
            ReplicaBody(
                j.lag.name,
                j.ok,
                j.lag.state,
                j.lag.lag_bytes,
                j.lag.receive_lag_bytes,
                j.lag.lag_seconds,
                j.lag.error,
                format_lsn(j.lag.replay_lsn),
            )
            for j in judged
        ],
        age_ms=age_ms,
    )
    return status, body
