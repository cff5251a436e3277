"""One snapshot of everything the status page shows, gathered from the sidecar's caches.

Only what the open (token-free) endpoints already show: the primary's health (/health/db),
replica lag and states against the default thresholds (/health/replicas), every pool (/pools, as
the pools endpoint builds it, so pools reported by applications appear too), the database view's
counts and durations (/db/activity without the token, /db/wraparound) and the job worker's
throttle (/metrics). Every figure comes through the same single-flight caches those endpoints use,
so however many pages are open, the database sees at most one round per cache TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fasterdb.errors import ServiceError

from ..catalog.activity import summarize
from ..catalog.views import Catalog
from ..catalog.wraparound import worst_ratios
from ..health.checks import PoolHealth
from ..jobs.worker import JobWorker
from ..lifecycle import Lifecycle
from ..replication.lag import LagMeter, Thresholds, evaluate
from .history import LagHistory, Sample

Overall = Literal["ok", "degraded", "down", "draining"]


@dataclass(frozen=True)
class PrimaryView:
    """The primary as /health/db sees it."""

    ok: bool
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True)
class ReplicaView:
    """One replica as /health/replicas sees it, with its recent history."""

    name: str
    state: str
    ok: bool
    lag_bytes: int | None
    receive_lag_bytes: int | None
    lag_seconds: float | None
    error: str | None
    history: list[Sample]


@dataclass(frozen=True)
class DatabaseView:
    """The headline of the database's own view (counts and durations only, as without the token)."""

    error: str | None = None  # why the activity view is unavailable
    connections: int | None = None
    usable: int | None = None
    headroom: int | None = None
    idle_in_transaction_seconds: float | None = None
    oldest_xact_seconds: float | None = None
    lock_waiters: int | None = None
    longest_lock_wait_seconds: float | None = None
    wraparound_error: str | None = None
    xid_ratio: float | None = None
    mxid_ratio: float | None = None


@dataclass(frozen=True)
class JobsView:
    """This sidecar's job worker, as /metrics tells it."""

    enabled: bool
    throttled: str | None  # the throttle kind holding a job back (replica_lag, replica_unknown, pool_waiting)
    seconds_without_progress: float  # 0: no job held


@dataclass(frozen=True)
class StatusView:
    """Everything on the page, at one moment."""

    at: float
    overall: Overall
    headline: str
    primary: PrimaryView
    replicas: list[ReplicaView]
    thresholds: Thresholds
    pools: list[dict[str, Any]]  # /pools entries as JSON objects: extra fields (source, app) pass through
    database: DatabaseView
    jobs: JobsView


def _headline(primary: PrimaryView, replicas: list[ReplicaView], draining: bool) -> tuple[Overall, str]:
    if draining:
        return "draining", "This sidecar is shutting down (draining): readiness is 503"
    if not primary.ok:
        return "down", f"Primary unavailable: {primary.error or 'unknown'}"
    bad = [r for r in replicas if not r.ok]
    if bad:
        return "degraded", "; ".join(f"{r.name}: {r.error or r.state}" for r in bad)
    # Within the thresholds, but worth a look (replay paused, catching up): said, not alarmed.
    odd = [r for r in replicas if r.state != "streaming"]
    if odd:
        return "ok", "Within the thresholds; " + "; ".join(f"{r.name}: {r.state}" for r in odd)
    return "ok", "Primary and every replica are healthy"


class StatusSource:
    """Collects a StatusView from the sidecar's resources (they are only read, never changed)."""

    def __init__(
        self,
        health: PoolHealth,
        lag: LagMeter,
        thresholds: Thresholds,
        pools: Callable[[], Awaitable[list[dict[str, Any]]]],
        catalog: Catalog,
        worker: JobWorker,
        jobs_enabled: bool,
        lifecycle: Lifecycle,
        history: LagHistory,
    ) -> None:
        self.health = health
        self.lag = lag
        self.thresholds = thresholds
        self.pools = pools
        self.catalog = catalog
        self.worker = worker
        self.jobs_enabled = jobs_enabled
        self.lifecycle = lifecycle
        self.history = history

    async def collect(self) -> StatusView:
        """A fresh view: every part concurrently, each under its own deadline; a failure is shown, not raised."""
        primary, snapshot, pools, database = await asyncio.gather(
            self.health.check_primary(), self.lag.snapshot(), self.pools(), self._database()
        )
        self.history.record(snapshot)
        _, judged = evaluate(snapshot, self.thresholds)
        replicas = [
            ReplicaView(
                j.lag.name,
                j.lag.state,
                j.ok,
                j.lag.lag_bytes,
                j.lag.receive_lag_bytes,
                j.lag.lag_seconds,
                j.lag.error,
                self.history.of(j.lag.name),
            )
            for j in judged
        ]
        primary_view = PrimaryView(primary.ok, primary.latency_ms, primary.error)
        overall, headline = _headline(primary_view, replicas, self.lifecycle.draining)
        jobs = JobsView(self.jobs_enabled, self.worker.throttled, self.worker.seconds_without_progress())
        return StatusView(
            time.time(), overall, headline, primary_view, replicas, self.thresholds, pools, database, jobs
        )

    async def _database(self) -> DatabaseView:
        activity, wraparound = await asyncio.gather(
            self.catalog.activity(), self.catalog.wraparound(), return_exceptions=True
        )
        values: dict[str, Any] = {}
        if isinstance(activity, BaseException):
            values["error"] = _reason(activity)
        else:
            s = summarize(activity.value)
            oldest, idle = s.oldest_xact, s.oldest_idle_in_transaction
            values.update(
                connections=s.connections,
                usable=s.usable,
                headroom=s.headroom,
                idle_in_transaction_seconds=idle.state_seconds if idle else 0.0,
                oldest_xact_seconds=oldest.xact_seconds if oldest else 0.0,
                lock_waiters=len(s.lock_waiters),
                longest_lock_wait_seconds=s.longest_lock_wait_seconds,
            )
        if isinstance(wraparound, BaseException):
            values["wraparound_error"] = _reason(wraparound)
        else:
            values["xid_ratio"], values["mxid_ratio"] = worst_ratios(wraparound.value)
        return DatabaseView(**values)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ServiceError):
        return str(getattr(exc, "category", None) or exc.message)
    if isinstance(exc, Exception):
        return "error"
    raise exc  # cancellation and the like are not a view's failure
