"""The app factory: ``create_app(settings)`` builds everything; nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

import msgspec
from FasterAPI import Faster, HTTPException, RequestValidationError

from fasterdb.errors import ServiceError
from fasterdb.pools.databases import Databases
from fasterdb.pools.managed import ManagedPool, PoolConfig

from . import __version__
from .app_reports import AppReports
from .auth import AdminAuth
from .catalog.budget import sidecar_footprint
from .catalog.views import Catalog
from .db.migrations import Migration, migrate
from .drain import InFlight, wind_down
from .health.checks import PoolHealth
from .health.readiness import Startup
from .health.refresher import Refresher
from .http.api import Api
from .http.conventions import HttpConventions, RouteTable
from .http.errors import (
    http_exception_handler,
    service_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from .http.sse import Streams
from .jobs.queue import JobQueue
from .jobs.worker import JobWorker
from .ledger.ledger import Ledger
from .lifecycle import Lifecycle
from .metrics.collector import SidecarCollector
from .metrics.loop_lag import LoopLag
from .replication.ack import ReplicationAck
from .replication.fence import Fence, watched_hosts
from .replication.lag import LagMeter, Thresholds
from .routes import accounts, admin, db, docs, health, jobs, metrics, pools, replicas, status, transfers
from .secret_files import SecretFiles
from .settings import Settings, ack_mode, load_settings
from .status.feed import Feed
from .status.history import LagHistory, follow
from .status.view import StatusSource, StatusView

log = logging.getLogger("fasterdb.app")
STATUS_INTERVAL = 1.0  # seconds between the status page's updates
MAX_STATUS_STREAMS = 32  # open status pages one sidecar serves at once (they share one producer)
STREAMS = ("pools", "status")  # the Server-Sent Event streams (/pools/stream, /status/stream)


class Sidecar:
    """The sidecar's resources: settings, pools, health, lag, ledger and jobs, opened and closed together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        config = PoolConfig(
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.command_timeout,
            connect_timeout=settings.connect_timeout,
            acquire_timeout=settings.acquire_timeout,
            max_inactive_connection_lifetime=settings.max_inactive_connection_lifetime,
            monitor_statement_timeout=settings.health_timeout,
        )
        self.databases = Databases(
            ManagedPool("primary", "primary", settings.primary_dsn.get_secret_value(), config),
            [ManagedPool(r.name, "replica", r.dsn.get_secret_value(), config) for r in settings.replica_dsns],
        )
        self.health = PoolHealth(self.databases, settings.health_timeout, settings.health_cache_ttl)
        # Lag history samples further apart than three refresh rounds say nothing of the time between.
        max_gap = 3 * max(settings.monitor_interval, settings.health_cache_ttl, 1.0)
        self.lag_defaults = Thresholds(settings.max_lag_bytes, settings.max_lag_seconds)
        self.lag = LagMeter(self.databases, self.health.deadline, settings.health_cache_ttl, max_gap, self.lag_defaults)
        self.refresher = Refresher(self.health, self.lag, settings.monitor_interval)
        self.fence = Fence(
            watched_hosts(list(self.databases), _named_dsns(settings), config),
            settings.split_brain_check_interval,
            self.health.deadline,
        )
        self.ack = ReplicationAck(
            self.databases.primary,
            ack_mode(settings),
            settings.transfer_ack_timeout,
            self.health.deadline,
            settings.transfer_ack_standbys,
        )

        self.catalog = Catalog(self.databases, self.health.deadline, settings.catalog_cache_ttl)
        self.auth = AdminAuth(settings.admin_token)
        self.ledger = Ledger(
            self.databases,
            self.health,
            settings.schema_name,
            retry_budget=settings.retry_budget,
            fence=self.fence,
            ack=self.ack,
        )
        self.worker = JobWorker(
            self.databases,
            self.lag,
            settings.schema_name,
            max_replica_lag_bytes=settings.job_max_replica_lag_bytes,
            max_pool_waiting=settings.job_max_pool_waiting,
            counts=self.ledger.counts,
            lease_seconds=settings.job_lease_seconds,
            poll_interval=settings.job_poll_interval,
            lag_max_age=settings.job_lag_max_age,
            unknown_lag=settings.job_unknown_lag,
            fence=self.fence,
        )
        self.jobs = JobQueue(self.databases, settings.schema_name, on_submit=self.worker.wake)
        self.reports = AppReports()  # the application's pools, as its processes report them
        self.streams = Streams(settings.max_streams, STREAMS)  # open Server-Sent Event streams
        self.loop_lag = LoopLag()
        self.secrets = SecretFiles(
            settings,
            lambda: load_settings(host=settings.host, port=settings.port),
            self.databases,
            self.auth,
            settings.secret_reload_interval,
            on_dsns=self._dsns_rotated,
        )
        self.collector = SidecarCollector(
            self.databases,
            self.health,
            self.lag,
            lambda: dict(self.ledger.counts),
            lambda: self.worker.throttled,
            self.worker.seconds_without_progress,
            self.reports,
            self.loop_lag,
            split_brain=lambda: self.fence.fenced,
            streams_open=lambda: dict(self.streams.open),
        )
        self.lifecycle = Lifecycle()
        self.lag_history = LagHistory()
        self.status = StatusSource(
            self.health,
            self.lag,
            self.lag_defaults,
            self._pool_rows,
            self.catalog,
            self.worker,
            settings.jobs_enabled,
            self.lifecycle,
            self.lag_history,
        )
        self.status_feed: Feed[StatusView] = Feed(
            self.status.collect, STATUS_INTERVAL, MAX_STATUS_STREAMS, lambda: self.lifecycle.draining
        )
        self._history_task: asyncio.Task[None] | None = None

    async def _dsns_rotated(self, new: Settings) -> None:
        """Rotated DSNs reach the fence's own connections too (the pools have them already)."""
        await self.fence.replace_dsns(_named_dsns(new))

    async def _pool_rows(self) -> list[dict[str, Any]]:
        """The /pools entries as JSON objects (what /pools serves, with readiness refreshed through its cache)."""
        await asyncio.gather(*(self.health.check(p.name) for p in self.databases))
        rows: list[dict[str, Any]] = msgspec.to_builtins(pools.pools_body(self.databases, self.health).pools)
        return rows

    async def migrate(self) -> Migration:
        """Create or upgrade the sidecar's schema (idempotent, safe concurrently); the worker looks at once."""
        done = await migrate(self.databases.primary, self.settings.schema_name)
        self.worker.wake()
        return done

    async def start(self) -> None:
        """Open the pools and start the background tasks; never waits for the database."""
        await self.databases.open()
        if self.settings.jobs_enabled:
            self.worker.start()
        self.refresher.start()
        self.fence.start()
        self.secrets.start()
        self.loop_lag.start()
        self._history_task = asyncio.create_task(follow(self.lag_history, self.lag.last), name="lag-history")
        # Everything built so far (modules, settings, the app) lives as long as the process: out of
        # the collector's generations, a full collection no longer walks it (about 30 ms on a loaded
        # 2-core machine, which would land in some request's latency).
        gc.collect()
        gc.freeze()
        self.lifecycle.serving()
        log.info("sidecar started", extra={"pools": [p.name for p in self.databases], "version": __version__})

    async def stop(self) -> None:
        """After the HTTP server's drain: the drain's last step (``drain.wind_down``)."""
        self.health.transitions.quiet = True
        await wind_down(self.lifecycle, self._stop_background, self.databases.close)
        log.info("sidecar stopped")

    async def _stop_background(self) -> None:
        await self.secrets.stop()
        await self.loop_lag.stop()
        await self.worker.stop()
        await self.refresher.stop()
        await self.fence.stop()
        await self.ack.stop()
        if self._history_task is not None:
            self._history_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._history_task


def _named_dsns(settings: Settings) -> list[tuple[str, str]]:
    return [("primary", settings.primary_dsn.get_secret_value())] + [
        (r.name, r.dsn.get_secret_value()) for r in settings.replica_dsns
    ]


def create_app(settings: Settings, sidecar: Sidecar | None = None) -> Faster:
    """Build the FasterAPI application around ``sidecar`` (a new one from ``settings`` by default)."""
    sidecar = sidecar or Sidecar(settings)
    api = Api(sidecar.auth)
    health.register(
        api,
        sidecar.health,
        Startup(sidecar.lifecycle, sidecar.databases, settings.startup_require_primary),
        sidecar.fence,
        fail_readiness=settings.split_brain_readiness == "unready",
    )
    replicas.register(api, sidecar.lag, sidecar.lag_defaults)
    draining = lambda: sidecar.lifecycle.draining  # noqa: E731
    pools.register(api, sidecar.databases, sidecar.health, sidecar.reports, draining, sidecar.streams)
    metrics.register(api, sidecar.collector, sidecar.catalog)
    footprint = sidecar_footprint(settings.pool_min_size, settings.jobs_enabled)
    db.register(api, sidecar.catalog, sidecar.auth, sidecar.reports, footprint, settings.pool_max_size)
    admin.register(api, sidecar.migrate)
    accounts.register(api, sidecar.ledger)
    transfers.register(api, sidecar.ledger)
    jobs.register(api, sidecar.jobs)
    status.register(api, sidecar.status, sidecar.status_feed, sidecar.streams)
    docs.register(api)
    app = build_app(api, sidecar.lifecycle)
    app.on_startup(sidecar.start)
    app.on_shutdown(sidecar.stop)
    return app


def build_app(api: Api, lifecycle: Lifecycle | None = None) -> Faster:
    """The FasterAPI application serving ``api``'s operations, with our error handling and conventions."""
    # The framework's own /openapi.json and /docs are off: ours are generated from the contract
    # and served without a CDN (routes.docs).
    app = Faster(title="fasterdb-sidecar", version=__version__, openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(api.router)
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_exception_handler)
    # The first middleware added is the outermost.
    if lifecycle is not None:
        app.add_middleware(InFlight, lifecycle=lifecycle)  # sees every request, answered or not
    app.add_middleware(HttpConventions, table=RouteTable((op.method, op.path) for op in api.operations))
    return app
