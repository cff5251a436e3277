"""Pool statistics: /pools and each event of /pools/stream."""

from __future__ import annotations

from typing import Literal

import msgspec

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


class PoolsBody(msgspec.Struct):
    """GET /pools (and each event of /pools/stream)."""

    collected_at: Timestamp
    pools: list[PoolBody]
