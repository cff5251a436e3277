"""Router: /health/live (never touches the database), /health/startup and /health/db (readiness)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import msgspec
from FasterAPI import Response

from fasterdb.contract import DbHealthBody, LiveBody, PoolHealth, StartupBody, timestamp

from ..health.checks import PoolCheck
from ..health.checks import PoolHealth as Health
from ..health.readiness import Startup, db_readiness, known_readiness
from ..http.api import Api, Call, LastReply, Operation, Reply, json_reply
from ..http.params import Param, boolean
from ..lifecycle import Lifecycle
from ..replication.fence import Fence

LIVE = Operation(
    "GET",
    "/health/live",
    "health_live",
    "Liveness: the process serves HTTP (no database involved)",
    "health",
    (Reply(200, "alive", LiveBody),),
)
STARTUP = Operation(
    "GET",
    "/health/startup",
    "health_startup",
    "Start-up: the sidecar serves and every pool has finished its first connection attempt",
    "health",
    (
        Reply(200, "started (a down database does not hold this back)", StartupBody),
        Reply(503, "still starting (the reason is in the body)", StartupBody),
    ),
)
DB = Operation(
    "GET",
    "/health/db",
    "health_db",
    "Readiness: the primary answers a query within FASTERDB_HEALTH_TIMEOUT (503 from SIGTERM on)",
    "health",
    (
        Reply(200, "the primary is usable", DbHealthBody),
        Reply(
            503,
            "the primary is not usable, the sidecar is draining, or (FASTERDB_SPLIT_BRAIN_READINESS=unready) "
            "money movement is fenced by a split brain; the reason is in the body",
            DbHealthBody,
        ),
    ),
    params=(Param("replicas", "query", {"type": "boolean"}, "true: add the replica pools' checks", boolean, False),),
)


def pool_health(check: PoolCheck) -> PoolHealth:
    """One pool's check as the contract's body."""
    return PoolHealth(check.name, check.ok, check.latency_ms, check.error)


def register(
    api: Api, health: Health, startup: Startup, fence: Fence | None = None, *, fail_readiness: bool = True
) -> None:
    """The health endpoints, reading state only through ``health``, ``startup`` and ``fence``.

    While the split-brain fence holds, /health/db names it (``split_brain``) and, with
    ``fail_readiness`` (FASTERDB_SPLIT_BRAIN_READINESS=unready), answers 503.
    """
    lifecycle: Lifecycle = startup.lifecycle

    @api.route(LIVE)
    async def live(call: Call) -> Response:
        """Always 200 while the process runs; Kubernetes' liveness probe must never depend on the DB."""
        return json_reply(LiveBody("ok"))

    @api.route(STARTUP)
    async def started(call: Call) -> Response:
        """200 once start-up is over (kubelet then starts the application containers), else 503."""
        reason = startup.reason()
        body = StartupBody(
            status="started" if reason is None else "starting",
            state=lifecycle.state,
            pools=startup.attempts(),
            reason=reason,
        )
        return json_reply(body, 200 if reason is None else 503)

    # Probes within the same millisecond of the same check get the same answer object.
    last = LastReply()

    @api.route(DB)
    async def db(call: Call) -> Response:
        """200 when the primary answers in time, else 503; one cached check serves all probes per TTL."""
        fenced = fence.reason() if fence is not None else None
        if fence is None or fenced is None:  # the usual case: no tasks to gather (they cost a tenth of the throughput)
            include_replicas = call.params["replicas"]
            # The probe's usual answer comes from the cached check without a coroutine.
            known = None if include_replicas else known_readiness(health, lifecycle)
            readiness = known or await db_readiness(health, lifecycle, include_replicas)
        else:  # a split brain, or no recent view: a fresh round alongside the primary's check
            readiness, fenced = await asyncio.gather(
                db_readiness(health, lifecycle, call.params["replicas"]), fence.settled()
            )
        primary = readiness.primary
        reason = readiness.reason
        if reason is None and fenced is not None and fail_readiness:
            reason = f"split_brain: {fenced}"
        code = 200 if reason is None else 503
        age_ms = max(0, int((time.time() - primary.checked_at) * 1000))
        if readiness.replicas is not None:
            return json_reply(_db_body(primary, age_ms, reason, fenced, readiness.replicas), code)
        made_of = (primary, age_ms, reason, fenced, lifecycle.draining)
        reply = last.get(made_of)
        if reply is None:
            reply = last.keep(made_of, msgspec.json.encode(_db_body(primary, age_ms, reason, fenced, None)), code)
        return reply

    def _db_body(
        primary: PoolCheck, age_ms: int, reason: str | None, fenced: str | None, replicas: list[PoolCheck] | None
    ) -> DbHealthBody:
        status: Literal["ok", "unavailable", "draining"] = (
            "ok" if reason is None else "draining" if lifecycle.draining else "unavailable"
        )
        body = DbHealthBody(
            status=status, primary=pool_health(primary), checked_at=timestamp(primary.checked_at), age_ms=age_ms
        )
        if reason is not None:
            body.reason = reason
        if fenced is not None:
            body.split_brain = fenced
        if replicas is not None:
            body.replicas = [pool_health(check) for check in replicas]
        return body
