"""Transfer-batch jobs: the router, and the worker that runs them inside every sidecar.

A job is a persisted list of transfers. Each sidecar runs one worker that claims an active job
(``FOR UPDATE SKIP LOCKED`` plus a lease), then applies ``batch_size`` items per transaction. Before
each batch it checks replica lag and the primary pool's waiters: above the limits the job turns
``throttled`` with a reason and resumes by itself. A job whose sidecar died is claimed again when
its lease expires and finishes the remaining items; idempotency keys make a second application of
any item impossible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from FasterAPI import FasterRouter, JSONResponse, Query, Request

from service.auth import ADMIN_SECURITY, AdminAuth
from service.db import jobs as sql
from service.db.pools import Databases, run_transaction, transaction
from service.errors import (
    Conflict,
    DatabaseUnavailable,
    NotFound,
    ServiceError,
    Unprocessable,
    error_responses,
    json_content,
)
from service.http import json_response, parse_body, path_int, query_doc
from service.lag import ReplicationMonitor
from service.money import MoneyError, TransferRequest, check_account_id, check_key, parse_amount
from service.sizes import format_size

log = logging.getLogger("fasterdb.jobs")

MAX_ITEMS = 100_000
UNMIGRATED_POLL_SECONDS = 10.0
BODY_LIMIT = 32 * 1024 * 1024


class ItemBody(msgspec.Struct):
    """One transfer of a job."""

    from_account: int
    to_account: int
    amount: Decimal
    idempotency_key: str | None = None


class JobBody(msgspec.Struct):
    """POST /jobs."""

    kind: str
    items: list[ItemBody]
    batch_size: int = 100
    dry_run: bool = False


@dataclass(frozen=True)
class JobRequest:
    """A validated job submission."""

    items: list[TransferRequest]
    batch_size: int
    dry_run: bool


def validate_job(body: JobBody) -> JobRequest:
    """Every item checked up front; a job with an invalid item is refused whole (nothing stored)."""
    if body.kind != "transfer-batch":
        raise MoneyError(f"unknown job kind {body.kind!r}: only 'transfer-batch' exists")
    if not 1 <= len(body.items) <= MAX_ITEMS:
        raise MoneyError(f"a job needs 1 to {MAX_ITEMS} items")
    if not 1 <= body.batch_size <= 1000:
        raise MoneyError("batch_size must be between 1 and 1000")
    items, problems = [], []
    for seq, item in enumerate(body.items):
        try:
            src = check_account_id(item.from_account, "from_account")
            dst = check_account_id(item.to_account, "to_account")
            if src == dst:
                raise MoneyError("from_account and to_account must differ")
            key = check_key(item.idempotency_key) if item.idempotency_key is not None else ""
            items.append(TransferRequest(src, dst, parse_amount(item.amount), key))
        except MoneyError as exc:
            problems.append(f"item {seq}: {exc}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise MoneyError("; ".join(problems[:5]) + more)
    return JobRequest(items, body.batch_size, body.dry_run)


class JobRunner:
    """Submits, inspects and cancels jobs, and runs the worker loop of this sidecar."""

    def __init__(
        self,
        databases: Databases,
        replication: ReplicationMonitor,
        schema: str,
        *,
        max_replica_lag_bytes: int,
        max_pool_waiting: int,
        counts: Counter[str],
        lease_seconds: float = 15.0,
        poll_interval: float = 1.0,
        throttle_pause: float = 0.5,
    ) -> None:
        self.databases = databases
        self.replication = replication
        self.schema = schema
        self.max_replica_lag_bytes = max_replica_lag_bytes
        self.max_pool_waiting = max_pool_waiting
        self.counts = counts
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.throttle_pause = throttle_pause
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # -- API --------------------------------------------------------------------------------

    async def submit(self, items: list[TransferRequest], batch_size: int, dry_run: bool) -> dict[str, Any]:
        """Persist a job (queued); the worker of some sidecar picks it up."""
        async with transaction(self.databases.primary) as conn:
            job = await sql.create_job(conn, self.schema, items, batch_size, dry_run)
        self._wake.set()
        return job

    async def get(self, job_id: int) -> dict[str, Any]:
        """One job; 404 when unknown."""
        async with transaction(self.databases.primary, readonly=True) as conn:
            job = await sql.get_job(conn, self.schema, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="job_not_found")
        return job

    async def list(self, limit: int) -> list[dict[str, Any]]:
        """The most recent jobs."""
        async with transaction(self.databases.primary, readonly=True) as conn:
            return await sql.list_jobs(conn, self.schema, limit)

    async def cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a queued, running or throttled job; 409 when it has finished, 404 when unknown."""
        async with transaction(self.databases.primary) as conn:
            cancelled, job = await sql.cancel_job(conn, self.schema, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="job_not_found")
        if not cancelled:
            raise Conflict(f"job {job_id} has already finished ({job['status']})", code="job_finished")
        return job

    # -- worker -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker loop."""
        self._task = asyncio.create_task(self._loop(), name="job-worker")

    async def stop(self) -> None:
        """Stop the worker; an interrupted batch rolls back and is redone by the next owner."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            pause = self.poll_interval
            try:
                job_id = await run_transaction(
                    self.databases.primary,
                    lambda conn: sql.claim_job(conn, self.schema, self.owner, self.lease_seconds),
                )
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
                    log.warning("job worker: %s", exc.message)
            except Exception:
                log.exception("job worker failed; continuing")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except TimeoutError:
                pass

    async def throttle_reason(self) -> str | None:
        """Why the next batch must wait (replica lag, waiting tasks), or None."""
        waiting = self.databases.primary.instruments.waiting
        if waiting > self.max_pool_waiting:
            return f"{waiting} tasks wait for a primary connection (limit {self.max_pool_waiting})"
        snapshot = await self.replication.snapshot()
        for lag in snapshot.replicas:
            if lag.lag_bytes is not None and lag.lag_bytes > self.max_replica_lag_bytes:
                return (
                    f"replica {lag.name} lags {format_size(lag.lag_bytes)}"
                    f" (limit {format_size(self.max_replica_lag_bytes)})"
                )
        return None

    async def _run(self, job_id: int) -> None:
        job = await self.get(job_id)
        errors = 0
        while True:
            reason = await self.throttle_reason()
            if reason is not None:
                held = await run_transaction(
                    self.databases.primary,
                    lambda conn, why=reason: sql.hold_lease(  # type: ignore[misc]
                        conn, self.schema, job_id, self.owner, self.lease_seconds, "throttled", why
                    ),
                )
                if not held:
                    return
                await asyncio.sleep(self.throttle_pause)
                continue
            try:
                result = await run_transaction(
                    self.databases.primary,
                    lambda conn: sql.run_batch(
                        conn, self.schema, job_id, self.owner, self.lease_seconds, job["batch_size"], job["dry_run"]
                    ),
                )
            except DatabaseUnavailable as exc:
                errors += 1
                log.warning("job %d: batch failed (%s), attempt %d", job_id, exc.category, errors)
                await asyncio.sleep(min(0.2 * errors, 2.0))
                continue  # the lease (if it lapses) lets another sidecar take over
            except ServiceError as exc:
                message = exc.message
                log.error("job %d failed: %s", job_id, message)
                await run_transaction(
                    self.databases.primary,
                    lambda conn, why=message: sql.fail_job(  # type: ignore[misc]
                        conn, self.schema, job_id, self.owner, why
                    ),
                )
                return
            errors = 0
            self.counts.update(result.outcomes or {})
            if result.lost_lease:
                log.info("job %d: lease lost or job cancelled; stopping", job_id)
                return
            if result.finished:
                log.info("job %d finished", job_id)
                return


_JOB = {
    "type": "object",
    "required": [
        "job_id",
        "kind",
        "status",
        "total",
        "applied",
        "duplicates",
        "failed",
        "throttle_reason",
        "created_at",
        "updated_at",
        "errors",
    ],
    "properties": {
        "job_id": {"type": "integer"},
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "throttled", "succeeded", "failed", "cancelled"]},
        "total": {"type": "integer"},
        "applied": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "failed": {"type": "integer"},
        "batch_size": {"type": "integer"},
        "dry_run": {"type": "boolean"},
        "throttle_reason": {"type": "string", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_JOB_IN = {
    "type": "object",
    "required": ["kind", "items"],
    "properties": {
        "kind": {"type": "string", "enum": ["transfer-batch"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "required": ["from_account", "to_account", "amount"],
                "properties": {
                    "from_account": {"type": "integer", "minimum": 1},
                    "to_account": {"type": "integer", "minimum": 1},
                    "amount": {
                        "type": "string",
                        "pattern": r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,14}(\.[0-9]{1,2})?)$",
                    },
                    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            },
        },
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        "dry_run": {"type": "boolean", "default": False},
    },
}


def jobs_router(auth: AdminAuth, runner: JobRunner) -> FasterRouter:
    """POST/GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel (bearer token required)."""
    router = FasterRouter(tags=["jobs"])
    job_id_param = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}

    @router.post(
        "/jobs",
        summary="Submit a transfer-batch job (202; a worker runs it in batches)",
        status_code=202,
        openapi_extra={
            "security": ADMIN_SECURITY,
            "requestBody": {"required": True, "content": json_content(_JOB_IN)},
            "responses": {
                "202": {"description": "queued", "content": json_content(_JOB)},
                **error_responses(401, 403, 413, 422, 503),
            },
        },
    )
    async def submit_job(request: Request) -> JSONResponse:
        """Validate every item, persist the job, answer 202 with its id."""
        auth.check(request)
        job = await parse_body(request, JobBody, validate_job, code="invalid_job", limit=BODY_LIMIT)
        return json_response(await runner.submit(job.items, job.batch_size, job.dry_run), 202)

    @router.get(
        "/jobs",
        summary="Recent jobs, newest first",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [query_doc("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 50")],
            "responses": {
                "200": {
                    "description": "jobs",
                    "content": json_content(
                        {"type": "object", "properties": {"jobs": {"type": "array", "items": _JOB}}}
                    ),
                },
                **error_responses(400, 401, 403, 503),
            },
        },
    )
    async def list_jobs(request: Request, limit: str | None = Query(None)) -> JSONResponse:
        """The most recent jobs."""
        auth.check(request)
        count = path_int(limit, "limit") if limit is not None else 50
        if count > 1000:
            raise Unprocessable("limit must be at most 1000", code="invalid_parameter", status=400)
        return json_response({"jobs": await runner.list(count)})

    @router.get(
        "/jobs/{job_id}",
        summary="One job's status and progress",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [job_id_param],
            "responses": {
                "200": {"description": "the job", "content": json_content(_JOB)},
                **error_responses(400, 401, 403, 404, 503),
            },
        },
    )
    async def get_job(request: Request, job_id: str) -> JSONResponse:
        """Status, counters and the first errors."""
        auth.check(request)
        return json_response(await runner.get(path_int(job_id, "job id")))

    @router.post(
        "/jobs/{job_id}/cancel",
        summary="Cancel a queued, running or throttled job",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [job_id_param],
            "responses": {
                "200": {"description": "cancelled", "content": json_content(_JOB)},
                **error_responses(400, 401, 403, 404, 409, 503),
            },
        },
    )
    async def cancel_job(request: Request, job_id: str) -> JSONResponse:
        """Items already applied stay applied; the rest are not run."""
        auth.check(request)
        return json_response(await runner.cancel(path_int(job_id, "job id")))

    return router
