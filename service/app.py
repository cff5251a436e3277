"""The app factory: ``create_app(settings)`` builds everything; nothing happens at import time."""

from __future__ import annotations

import asyncio
import logging

from FasterAPI import Faster, HTTPException, RequestValidationError

from service import __version__
from service.auth import AdminAuth
from service.db.pools import Databases, ManagedPool, PoolConfig
from service.errors import ServiceError
from service.health import health_router
from service.http import (
    ErrorBodyMiddleware,
    http_exception_handler,
    service_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from service.jobs import JobRunner, jobs_router
from service.lag import ReplicationMonitor, Thresholds
from service.ledger import Ledger
from service.metrics import SidecarCollector, metrics_router
from service.monitor import DatabaseMonitor
from service.pools import pools_router
from service.replication import replication_router
from service.settings import Settings
from service.transfers import admin_router

log = logging.getLogger("fasterdb.app")


class Sidecar:
    """The sidecar's resources: settings, pools and the monitor, opened and closed together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        config = PoolConfig(
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.command_timeout,
            connect_timeout=settings.connect_timeout,
            acquire_timeout=settings.acquire_timeout,
            max_inactive_connection_lifetime=settings.max_inactive_connection_lifetime,
        )
        self.databases = Databases(
            ManagedPool("primary", "primary", settings.primary_dsn, config),
            [ManagedPool(r.name, "replica", r.dsn, config) for r in settings.replica_dsns],
        )
        self.monitor = DatabaseMonitor(self.databases, settings.health_timeout, settings.health_cache_ttl)
        self.replication = ReplicationMonitor(self.databases, self.monitor.deadline, settings.health_cache_ttl)
        self.lag_defaults = Thresholds(settings.max_lag_bytes, settings.max_lag_seconds)

        self.auth = AdminAuth(settings.admin_token)
        self.ledger = Ledger(self.databases, self.monitor, settings.schema_name)
        self.jobs = JobRunner(
            self.databases,
            self.replication,
            settings.schema_name,
            max_replica_lag_bytes=settings.job_max_replica_lag_bytes,
            max_pool_waiting=settings.job_max_pool_waiting,
            counts=self.ledger.counts,
            lease_seconds=settings.job_lease_seconds,
            poll_interval=settings.job_poll_interval,
        )
        self.stopping = False  # set on SIGTERM, before in-flight requests are drained
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the pools and start the background monitor; never waits for the database."""
        await self.databases.open()
        self.jobs.start()
        if self.settings.monitor_interval > 0:
            self._watcher = asyncio.create_task(self._watch(self.settings.monitor_interval), name="monitor")
        log.info(
            "sidecar started",
            extra={"pools": [p.name for p in self.databases], "version": __version__},
        )

    async def _watch(self, interval: float) -> None:
        """Check every pool and replica lag periodically, so metrics and /pools stay current."""
        while True:
            try:
                await asyncio.gather(*(self.monitor.check(p.name) for p in self.databases), self.replication.snapshot())
            except Exception:  # never let the monitor die; the checks themselves don't raise
                log.exception("background monitor round failed")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Stop the monitor and close the pools within the shutdown timeout."""
        self.stopping = True
        self.monitor.quiet = True
        await self.jobs.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self.databases.close(timeout=max(1.0, self.settings.shutdown_timeout))
        log.info("sidecar stopped")


def create_app(settings: Settings, sidecar: Sidecar | None = None) -> Faster:
    """Build the FasterAPI application around ``sidecar`` (a new one from ``settings`` by default)."""
    sidecar = sidecar or Sidecar(settings)
    app = Faster(
        title="fasterdb-sidecar",
        version=__version__,
        description="Health, replica lag, pool statistics and transactional jobs for PostgreSQL.",
        redoc_url=None,
    )
    app.include_router(health_router(sidecar.monitor))
    app.include_router(replication_router(sidecar.replication, sidecar.lag_defaults))
    app.include_router(pools_router(sidecar.databases, sidecar.monitor, lambda: sidecar.stopping))
    app.include_router(admin_router(sidecar.auth, sidecar.ledger))
    app.include_router(jobs_router(sidecar.auth, sidecar.jobs))
    collector = SidecarCollector(
        sidecar.databases, sidecar.monitor, sidecar.replication, lambda: dict(sidecar.ledger.counts)
    )
    app.include_router(metrics_router(collector))

    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_exception_handler)
    app.add_middleware(ErrorBodyMiddleware)
    app.on_startup(sidecar.start)
    app.on_shutdown(sidecar.stop)
    return app
