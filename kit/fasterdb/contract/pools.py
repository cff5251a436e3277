"""Pool statistics: /pools and each event of /pools/stream."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from .common import Timestamp

# -- pools --------------------------------------------------------------------------------------


class WaitMs(msgspec.Struct):
    """Acquire waits over the last 60 s, in milliseconds."""

    p50: float
    p99: float
    max: float


class PoolBody(msgspec.Struct):
    """One pool's statistics (PgBouncer SHOW POOLS style)."""

    name: str
    role: Literal["primary", "replica"]
    ready: bool
    error: str | None
    min_size: int
    max_size: int
    size: int
    idle: int
    in_use: int
    waiting: int
    acquired_total: int
    acquire_timeouts_total: int
    acquire_errors_total: int
    acquire_wait_ms: WaitMs
    source: Annotated[Literal["sidecar", "app"], Meta(description="the sidecar's own pool, or the application's")] = (
        "sidecar"
    )
    app: Annotated[str | UnsetType, Meta(description="application pools: the application (FASTERDB_APP_NAME)")] = UNSET
    instance: Annotated[str | UnsetType, Meta(description="application pools: the process (host:pid)")] = UNSET


class PoolsBody(msgspec.Struct):
    """GET /pools (and each event of /pools/stream)."""

    collected_at: Timestamp
    pools: list[PoolBody]


class AppReport(msgspec.Struct, forbid_unknown_fields=True):
    """POST /pools/report: what one application process (the kit) reports to its pod's sidecar."""

    app: Annotated[str, Meta(min_length=1, max_length=40, description="FASTERDB_APP_NAME")]
    instance: Annotated[str, Meta(min_length=1, max_length=100, description="host:pid of the process")]
    interval: Annotated[float, Meta(gt=0, le=60, description="seconds until the next report")]
    pools: Annotated[list[PoolBody], Meta(max_length=64)]
    counters: Annotated[dict[str, int], Meta(description="routing figures since start (reads by target, ...)")]


class ReportAccepted(msgspec.Struct):
    """POST /pools/report: kept, and for how long without a newer report."""

    expires_in: Annotated[float, Meta(ge=0, description="seconds until the report expires (three intervals)")]
