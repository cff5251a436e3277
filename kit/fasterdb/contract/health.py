"""Health: /health/live, /health/startup, /health/db and /health/replicas."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from .common import Timestamp
from .vocabulary import LifecycleState, ReplicaState

# -- health -------------------------------------------------------------------------------------


class LiveBody(msgspec.Struct):
    """GET /health/live."""

    status: Literal["ok"]


class StartupBody(msgspec.Struct):
    """GET /health/startup: whether every pool has finished its first connection attempt."""

    status: Literal["started", "starting"]
    state: LifecycleState
    pools: dict[str, bool]
    reason: str | None = None


class PoolHealth(msgspec.Struct):
    """One pool's latest health check."""

    name: str
    ok: bool
    latency_ms: float | None
    error: str | None


class DbHealthBody(msgspec.Struct, omit_defaults=True):
    """GET /health/db: 200 when the primary answers in time, else 503."""

    status: Literal["ok", "unavailable", "draining"]
    primary: PoolHealth
    checked_at: Timestamp
    age_ms: Annotated[int, Meta(ge=0)]
    replicas: list[PoolHealth] | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    split_brain: Annotated[
        str | UnsetType,
        Meta(description="while money movement is fenced: why (two servers accept writes, or the primary is unknown)"),
    ] = UNSET


class ReplicaBody(msgspec.Struct):
    """One replica's measured lag, judged against the thresholds."""

    name: str
    ok: bool
    state: ReplicaState
    lag_bytes: int | None
    receive_lag_bytes: int | None
    lag_seconds: float | None
    error: str | None
    replay_lsn: Annotated[str | None, Meta(description="what the replica had replayed when measured")] = None


class ReplicasBody(msgspec.Struct):
    """GET /health/replicas: 200 when every replica is within the thresholds, else 503."""

    status: Literal["ok", "lagging", "unavailable"]
    max_lag_bytes: int
    max_lag_seconds: float
    primary_lsn: str | None
    replicas: list[ReplicaBody]
    age_ms: Annotated[int, Meta(ge=0, description="how old the measurement is (one serves every caller per TTL)")] = 0
