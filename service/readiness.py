"""Readiness, Patroni-style: each function returns None when the sidecar can serve, else the reason.

The HTTP edge only turns that into 200 or 503; the reason goes into the body.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.db.checks import PoolCheck
from service.pool_health import PoolHealth


@dataclass(frozen=True)
class DbReadiness:
    """What /health/db reports: the reason it is not ready (None: ready) and the checks behind it."""

    reason: str | None
    primary: PoolCheck
    replicas: list[PoolCheck] | None


def primary_reason(primary: PoolCheck) -> str | None:
    """Why the primary cannot take traffic (its check's error category), or None."""
    return None if primary.ok else (primary.error or "unknown")


async def db_readiness(health: PoolHealth, include_replicas: bool) -> DbReadiness:
    """Readiness from the cached primary check (and the replicas' checks when asked)."""
    primary = await health.check_primary()
    replicas = list(await health.check_replicas()) if include_replicas else None
    return DbReadiness(primary_reason(primary), primary, replicas)
