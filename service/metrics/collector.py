"""The Prometheus collector: every metric family, built at scrape time from the sidecar's memory.

Scraping never queries the database: everything comes from counters in memory and the health
and lag caches that the refresher (and probes) keep fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, get_args

from fasterdb.contract import ReplicaState
from fasterdb.pools.databases import Databases

from ..app_reports import AppReports
from ..health.checks import PoolHealth
from ..jobs.worker import THROTTLE_KINDS
from ..replication.lag import LagMeter
from .apps import app_routing
from .exposition import Collector, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from .loop_lag import LoopLag

REPLICA_STATES = get_args(ReplicaState)
# Every outcome a transfer can have, so each counter series exists (at 0) from the start.
TRANSFER_OUTCOMES = (
    "applied",
    "duplicate",
    "validated",
    "insufficient_funds",
    "account_not_found",
    "idempotency_conflict",
    "invalid",
    "unavailable",
    "split_brain",
    "not_replicated",
)


class PoolFigures(Protocol):
    """What a pool family reads: the sidecar's PoolSnapshot, or an application's reported PoolBody."""

    @property
    def min_size(self) -> int: ...

    @property
    def max_size(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def idle(self) -> int: ...

    @property
    def in_use(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    @property
    def acquired_total(self) -> int: ...

    @property
    def acquire_timeouts_total(self) -> int: ...

    @property
    def acquire_errors_total(self) -> int: ...


# The pool families: (name after fasterdb_pool_, help, how to read it from a pool's figures).
POOL_LABELS = ["pool", "source", "app", "process"]  # source: sidecar | app; app, process: application pools
POOL_GAUGES: tuple[tuple[str, str, Callable[[PoolFigures], int]], ...] = (
    ("size", "Open connections", lambda s: s.size),
    ("idle", "Open connections not in use", lambda s: s.idle),
    ("in_use", "Connections acquired and not yet released", lambda s: s.in_use),
    ("waiting", "Tasks waiting for a connection", lambda s: s.waiting),
    ("min_size", "Configured minimum size", lambda s: s.min_size),
    ("max_size", "Configured maximum size", lambda s: s.max_size),
)
POOL_COUNTERS: tuple[tuple[str, str, Callable[[PoolFigures], int]], ...] = (
    ("acquired", "Successful acquires", lambda s: s.acquired_total),
    ("acquire_timeouts", "Acquires that timed out", lambda s: s.acquire_timeouts_total),
    ("acquire_errors", "Acquires that failed to connect", lambda s: s.acquire_errors_total),
)


class SidecarCollector(Collector):
    """Builds every metric family at scrape time from the sidecar's in-memory state."""

    def __init__(
        self,
        databases: Databases,
        health: PoolHealth,
        lag: LagMeter,
        transfer_counts: Callable[[], dict[str, int]] | None = None,
        job_throttle: Callable[[], str | None] | None = None,
        job_stalled: Callable[[], float] | None = None,
        reports: AppReports | None = None,
        loop_lag: LoopLag | None = None,
        split_brain: Callable[[], bool] | None = None,
        streams_open: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.split_brain = split_brain
        self.databases = databases
        self.reports = reports
        self.loop_lag = loop_lag
        self.streams_open = streams_open
        self.health = health
        self.lag = lag
        self.transfer_counts = transfer_counts
        self.job_throttle = job_throttle
        self.job_stalled = job_stalled

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families (called by the registry on each scrape)."""
        up = GaugeMetricFamily("fasterdb_db_up", "1 when the pool's last health check succeeded", labels=["pool"])
        role = GaugeMetricFamily("fasterdb_pool_info", "Pool role (always 1)", labels=["pool", "role"])
        gauges = [
            (GaugeMetricFamily(f"fasterdb_pool_{key}", help_, labels=POOL_LABELS), read)
            for key, help_, read in POOL_GAUGES
        ]
        counters = [
            (CounterMetricFamily(f"fasterdb_pool_{key}", help_, labels=POOL_LABELS), read)
            for key, help_, read in POOL_COUNTERS
        ]
        wait = HistogramMetricFamily(
            "fasterdb_pool_acquire_wait_seconds",
            "Time spent waiting for a connection (the sidecar's pools; /pools has the application's p50/p99/max)",
            labels=POOL_LABELS,
        )
        for pool in self.databases:
            check = self.health.last(pool.name)
            up.add_metric([pool.name], 1.0 if check and check.ok else 0.0)
            role.add_metric([pool.name, pool.role], 1.0)
            labels = [pool.name, "sidecar", "", ""]
            s = pool.snapshot()
            for family, read in gauges + counters:
                family.add_metric(labels, float(read(s)))
            stats = pool.stats
            wait.add_metric(labels, [(b, float(c)) for b, c in stats.cumulative_buckets()], sum_value=stats.wait_sum)
        reports = self.reports.current() if self.reports is not None else []
        for report in reports:
            for app_pool in report.pools:
                for family, read in gauges + counters:
                    family.add_metric([app_pool.name, "app", report.app, report.instance], float(read(app_pool)))
        yield up
        yield role
        yield from (family for family, _ in gauges)
        yield from (family for family, _ in counters)
        yield wait

        lag_bytes = GaugeMetricFamily(
            "fasterdb_replica_lag_bytes", "WAL not yet replayed by the replica", labels=["replica"]
        )
        lag_seconds = GaugeMetricFamily(
            "fasterdb_replica_lag_seconds", "How long the replica has been behind", labels=["replica"]
        )
        state = GaugeMetricFamily(
            "fasterdb_replica_state",
            "1 for the replica's current state, 0 for the others (all 0 before the first measurement)",
            labels=["replica", "state"],
        )
        snapshot = self.lag.last()
        current = {lag.name: lag.state for lag in snapshot.replicas} if snapshot else {}
        for lag in snapshot.replicas if snapshot else []:
            if lag.lag_bytes is not None:
                lag_bytes.add_metric([lag.name], float(lag.lag_bytes))
            if lag.lag_seconds is not None:
                lag_seconds.add_metric([lag.name], lag.lag_seconds)
        for pool in self.databases.replicas:
            for name in REPLICA_STATES:
                state.add_metric([pool.name, name], 1.0 if current.get(pool.name) == name else 0.0)
        yield lag_bytes
        yield lag_seconds
        yield state

        transfers = CounterMetricFamily("fasterdb_transfers", "Transfers by outcome", labels=["status"])
        counts = dict.fromkeys(TRANSFER_OUTCOMES, 0) | (self.transfer_counts() if self.transfer_counts else {})
        for status, count in sorted(counts.items()):
            transfers.add_metric([status], float(count))
        yield transfers

        throttled = GaugeMetricFamily(
            "fasterdb_job_throttled",
            "1 while this sidecar's job worker holds a job back for this reason, else 0",
            labels=["reason"],
        )
        holding = self.job_throttle() if self.job_throttle else None
        for kind in THROTTLE_KINDS:
            throttled.add_metric([kind], 1.0 if holding == kind else 0.0)
        yield throttled
        yield GaugeMetricFamily(
            "fasterdb_job_seconds_without_progress",
            "Seconds since the job this sidecar holds applied a batch (throttled or failing); 0 without a job",
            value=self.job_stalled() if self.job_stalled else 0.0,
        )

        internal = CounterMetricFamily(
            "fasterdb_pool_internal_acquired",
            "Acquires by the sidecar's own background work (the job worker), not counted as the pool's",
            labels=["pool", "purpose"],
        )
        for pool in self.databases:
            internal.add_metric([pool.name, "jobs"], float(pool.internal_stats.acquired_total))
        yield internal
        yield GaugeMetricFamily(
            "fasterdb_split_brain",
            "1 while money movement is fenced: two servers accept writes, or which is the primary is unknown",
            value=1.0 if self.split_brain is not None and self.split_brain() else 0.0,
        )
        yield from app_routing(reports)
        if self.loop_lag is not None:
            yield GaugeMetricFamily(
                "fasterdb_event_loop_lag_seconds",
                "The sidecar's event loop: the largest delay in waking a task over the last 15 s "
                "(every request and probe waits as much)",
                value=self.loop_lag.worst(),
            )
        if self.streams_open is not None:
            open_ = GaugeMetricFamily(
                "fasterdb_streams_open",
                "Server-Sent Event streams open now (at most FASTERDB_MAX_STREAMS in all)",
                labels=["stream"],
            )
            for name, count in self.streams_open().items():
                open_.add_metric([name], float(count))
            yield open_
