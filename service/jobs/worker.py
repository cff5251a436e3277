"""The job worker inside every sidecar: claims an active job with a lease and runs it in batches.

It claims a job (``FOR UPDATE SKIP LOCKED`` plus a lease), then applies ``batch_size`` items per
transaction. Before the first batch and between batches it checks the primary pool's waiters and
replica lag, measured no longer ago than ``FASTERDB_JOB_LAG_MAX_AGE``: above the limits, or when a
replica's lag is unknown (down, timing out, promoted), or while the split-brain fence is closed, the
job turns ``throttled`` with a reason naming the replica (or the fence) and resumes by itself. A
job whose sidecar died is claimed again when its lease expires and finishes the remaining items;
idempotency keys make a second application impossible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Literal

from fasterdb.errors import DatabaseUnavailable, ServiceError
from fasterdb.pools.databases import Databases
from fasterdb.pools.transactions import run_transaction
from fasterdb.sizes import format_size
from fasterdb.tasks import cancel_and_wait

from ..replication.fence import Fence
from ..replication.lag import LagMeter
from ..transitions import TransitionLog
from . import sql
from .batch import run_batch

log = logging.getLogger("fasterdb.jobs")

UNMIGRATED_POLL_SECONDS = 10.0
MAX_OUTAGE_POLL_SECONDS = 30.0  # the longest pause between looks for jobs while the primary fails
OUTAGE = "job-worker"  # the TransitionLog key of the worker's own view of the primary
ThrottleKind = Literal["replica_lag", "replica_unknown", "pool_waiting", "split_brain"]
THROTTLE_KINDS: tuple[ThrottleKind, ...] = ("replica_lag", "replica_unknown", "pool_waiting", "split_brain")


@dataclass(frozen=True)
class Throttle:
    """Why the next batch must wait: a kind (for the metric) and a sentence (for the job)."""

    kind: ThrottleKind
    reason: str


class JobWorker:
    """Runs the jobs this sidecar claims, one at a time, until stopped."""

    def __init__(
        self,
        databases: Databases,
        lag: LagMeter,
        schema: str,
        *,
        max_replica_lag_bytes: int,
        max_pool_waiting: int,
        counts: Counter[str],
        lease_seconds: float = 15.0,
        poll_interval: float = 1.0,
        throttle_pause: float = 0.5,
        lag_max_age: float = 0.25,
        unknown_lag: Literal["throttle", "ignore"] = "throttle",
        fence: Fence | None = None,
    ) -> None:
        self.fence = fence
        self.databases = databases
        self.lag = lag
        self.schema = schema
        self.max_replica_lag_bytes = max_replica_lag_bytes
        self.max_pool_waiting = max_pool_waiting
        self.counts = counts
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.throttle_pause = throttle_pause
        self.lag_max_age = lag_max_age
        self.unknown_lag = unknown_lag
        self.throttled: ThrottleKind | None = None  # the kind of throttle holding a job now
        # time.monotonic() of the held job's last progress (its claim, then each applied batch).
        self.progress_at: float | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.outage = TransitionLog(log)

    def start(self) -> None:
        """Start the worker loop."""
        self._task = asyncio.create_task(self._loop(), name="job-worker")

    def wake(self) -> None:
        """Look for work now (a job was just submitted through this sidecar)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop the worker; an interrupted batch rolls back and is redone by the next owner."""
        await cancel_and_wait(self._task)

    async def _loop(self) -> None:
        primary = self.databases.primary
        failures = 0
        while True:
            pause = self.poll_interval
            try:
                job_id = await run_transaction(
                    primary,
                    partial(sql.claim_job, schema=self.schema, owner=self.owner, lease_seconds=self.lease_seconds),
                    internal=True,
                    idempotent=True,
                )
                failures = 0
                self.outage.record(OUTAGE, True, None, down="", up="job worker: the primary answers again")
                if job_id is not None:
                    log.info("claimed job %d", job_id, extra={"job_id": job_id, "owner": self.owner})
                    await self._run(job_id)
                    continue
            except ServiceError as exc:
                if exc.code == "schema_not_migrated":
                    # No tables yet: don't make the primary fail (and log) a statement every poll.
                    # A job submitted through this sidecar still wakes the worker at once.
                    pause = max(self.poll_interval, UNMIGRATED_POLL_SECONDS)
                else:
                    # Like the health logger: once when it starts, then once a minute while it lasts;
                    # and look again less and less often (a job submitted here still wakes it).
                    failures += 1
                    pause = min(self.poll_interval * 2**failures, MAX_OUTAGE_POLL_SECONDS)
                    self.outage.record(
                        OUTAGE, False, exc.code, down=f"job worker: cannot look for jobs: {exc.message}", up=None
                    )
            except Exception:
                log.exception("job worker failed; continuing")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except TimeoutError:
                pass

    async def throttle(self) -> Throttle | None:
        """Why the next batch must wait (split brain, waiting tasks, replica lag, unknown lag), or None."""
        if self.fence is not None:
            fenced = await self.fence.settled()
            if fenced is not None:  # the job pauses (throttled), it does not fail; it resumes when it clears
                return Throttle("split_brain", f"money movement is fenced: {fenced}")
        waiting = self.databases.primary.stats.waiting
        if waiting > self.max_pool_waiting:
            reason = f"{waiting} tasks wait for a primary connection (limit {self.max_pool_waiting})"
            return Throttle("pool_waiting", reason)
        snapshot = await self.lag.snapshot(max_age=self.lag_max_age)
        for lag in snapshot.replicas:
            if lag.lag_bytes is None:
                if self.unknown_lag == "throttle":
                    # The replica the gate exists to protect may be the one that stopped answering.
                    why = lag.error or lag.state
                    return Throttle("replica_unknown", f"replica {lag.name}: lag unknown ({why})")
                continue
            if lag.lag_bytes > self.max_replica_lag_bytes:
                reason = (
                    f"replica {lag.name} lags {format_size(lag.lag_bytes)}"
                    f" (limit {format_size(self.max_replica_lag_bytes)})"
                )
                return Throttle("replica_lag", reason)
        return None

    async def _run(self, job_id: int) -> None:
        get = partial(sql.get_job, schema=self.schema, job_id=job_id)
        job = await run_transaction(self.databases.primary, get, internal=True, idempotent=True)
        if job is None:
            return
        self.progress_at = time.monotonic()
        try:
            await self._batches(job_id, job.batch_size, job.dry_run)
        finally:
            self.throttled = None
            self.progress_at = None

    def seconds_without_progress(self) -> float:
        """How long the job this sidecar holds has gone without an applied batch (0: no job)."""
        return 0.0 if self.progress_at is None else time.monotonic() - self.progress_at

    async def _batches(self, job_id: int, batch_size: int, dry_run: bool) -> None:
        primary, schema, owner = self.databases.primary, self.schema, self.owner
        errors = 0
        while True:
            throttle = await self.throttle()
            self.throttled = throttle.kind if throttle is not None else None
            if throttle is not None:
                held = await run_transaction(
                    primary,
                    partial(
                        sql.hold_lease,
                        schema=schema,
                        job_id=job_id,
                        owner=owner,
                        lease_seconds=self.lease_seconds,
                        status="throttled",
                        reason=throttle.reason,
                    ),
                    internal=True,
                    idempotent=True,
                )
                if not held:
                    return
                await asyncio.sleep(self.throttle_pause)
                continue
            try:
                result = await run_transaction(
                    primary,
                    partial(
                        run_batch,
                        schema=schema,
                        job_id=job_id,
                        owner=owner,
                        lease_seconds=self.lease_seconds,
                        batch_size=batch_size,
                        dry_run=dry_run,
                    ),
                    internal=True,
                    idempotent=True,
                )
            except DatabaseUnavailable as exc:
                errors += 1
                log.warning("job %d: batch failed (%s), attempt %d", job_id, exc.category, errors)
                await asyncio.sleep(min(0.2 * errors, 2.0))
                continue  # the lease (if it lapses) lets another sidecar take over
            except ServiceError as exc:
                log.error("job %d failed: %s", job_id, exc.message)
                await run_transaction(
                    primary,
                    partial(sql.fail_job, schema=schema, job_id=job_id, owner=owner, message=exc.message),
                    internal=True,
                    idempotent=True,
                )
                return
            errors = 0
            self.progress_at = time.monotonic()
            self.counts.update(result.outcomes)
            if result.lost_lease:
                log.info("job %d: lease lost or job cancelled; stopping", job_id)
                return
            if result.finished:
                log.info("job %d finished", job_id)
                return
