"""Readiness, Patroni-style: each function returns None when the sidecar can serve, else the reason.

The HTTP edge only turns that into 200 or 503; the reason goes into the body.
"""

from __future__ import annotations

import time
from typing import Any

from service.db.checks import PoolCheck
from service.pool_health import PoolHealth


def primary_reason(primary: PoolCheck) -> str | None:
    """Why the primary cannot take traffic (its check's error category), or None."""
    return None if primary.ok else (primary.error or "unknown")


async def db_readiness(health: PoolHealth, include_replicas: bool) -> tuple[str | None, dict[str, Any]]:
    """(None or the reason, the /health/db body) from the cached primary (and replica) checks."""
    primary = await health.check_primary()
    reason = primary_reason(primary)
    body: dict[str, Any] = {
        "status": "ok" if reason is None else "unavailable",
        "primary": primary.public,
        "checked_at": primary.checked_at_iso,
        "age_ms": max(0, int((time.time() - primary.checked_at) * 1000)),
    }
    if include_replicas:
        body["replicas"] = [check.public for check in await health.check_replicas()]
    return reason, body
