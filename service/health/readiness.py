"""Readiness, Patroni-style: each function returns None when the sidecar can serve, else the reason.

The HTTP edge only turns that into 200 or 503; the reason goes into the body.
"""

from __future__ import annotations

from typing import NamedTuple

from fasterdb.pools.databases import Databases

from ..lifecycle import Lifecycle
from .checks import PoolCheck, PoolHealth


class DbReadiness(NamedTuple):
    """What /health/db reports: the reason it is not ready (None: ready) and the checks behind it.

    A named tuple: one is made per probe, and a frozen dataclass's ``__init__`` costs about a
    microsecond (a fiftieth of a probe).
    """

    reason: str | None
    primary: PoolCheck
    replicas: list[PoolCheck] | None


def primary_reason(primary: PoolCheck) -> str | None:
    """Why the primary cannot take traffic (its check's error category), or None."""
    return None if primary.ok else (primary.error or "unknown")


def known_readiness(health: PoolHealth, lifecycle: Lifecycle) -> DbReadiness | None:
    """``db_readiness`` without the replicas when it needs no check to run now (the probe's usual
    case: a cached primary check), else None. Synchronous: no coroutine on the probe's hot path."""
    reason = lifecycle.readiness_reason()
    name = health.databases.primary.name
    primary = health.last(name) if reason is not None else health.fresh(name)
    if primary is None:
        return None
    return DbReadiness(reason or primary_reason(primary), primary, None)


async def db_readiness(health: PoolHealth, lifecycle: Lifecycle, include_replicas: bool) -> DbReadiness:
    """Readiness from the lifecycle, then the cached primary check (and the replicas' when asked).

    While draining the answer is 503 at once: the last check is shown without running a new one.
    """
    readiness = known_readiness(health, lifecycle)
    if readiness is None:  # no check to show yet, or the cached one is due: one now (shared)
        reason = lifecycle.readiness_reason()
        primary = await health.check_primary()
        readiness = DbReadiness(reason or primary_reason(primary), primary, None)
    if include_replicas:
        readiness = readiness._replace(replicas=list(await health.check_replicas()))
    return readiness


class Startup:
    """What /health/startup reads: the lifecycle and each pool's first connection attempt."""

    def __init__(self, lifecycle: Lifecycle, databases: Databases, require_primary: bool) -> None:
        self.lifecycle = lifecycle
        self.databases = databases
        self.require_primary = require_primary

    def attempts(self) -> dict[str, bool]:
        """Per pool: whether its first connection attempt has finished (whatever its outcome)."""
        return {pool.name: pool.first_attempt_done for pool in self.databases}

    def reason(self) -> str | None:
        """Why start-up is not over (None: it is). A down database does not hold it back.

        A pure answer: every condition only ever turns true (the lifecycle leaves "starting" once, a
        pool's first attempt ends once, a pool once created stays so), so start-up happens once.
        """
        if self.lifecycle.state == "starting":
            return "starting"
        waiting = [name for name, done in self.attempts().items() if not done]
        if waiting:
            return f"first connection attempt still running: {', '.join(waiting)}"
        if self.require_primary and not self.databases.primary.ready_for_acquire:
            return "the primary has not answered yet (FASTERDB_STARTUP_REQUIRE_PRIMARY)"
        return None
