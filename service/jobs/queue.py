"""Transfer-batch jobs: validating a submission, and submitting, reading and cancelling jobs.

A job is a persisted list of transfers; the worker in ``service.job_worker`` runs it. Every item
is checked up front with the same rules as POST /transfers, and a job with an invalid item is
refused whole (nothing is stored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from msgspec import UNSET

from fasterdb.contract import JOB_MAX_ITEMS, JobRequest
from fasterdb.errors import Conflict, NotFound
from fasterdb.pools.managed import Databases
from fasterdb.pools.transactions import transaction

from ..ledger.money import MoneyError, TransferRequest, amount_from_json, transfer_request
from . import sql as sql

MAX_BATCH_SIZE = 1000
KINDS = ("transfer-batch",)


class InvalidJob(ValueError):
    """A job submission that is refused; the message says why (422 ``invalid_job``)."""


@dataclass(frozen=True)
class ValidJob:
    """A validated job submission (an item without a key gets one when the job is stored)."""

    items: list[TransferRequest]
    batch_size: int
    dry_run: bool


def validate_job(body: JobRequest) -> ValidJob:
    """Every item checked up front; the first problems are named by item number."""
    if body.kind not in KINDS:
        raise InvalidJob(f"unknown job kind {body.kind!r}: only {', '.join(KINDS)} exists")
    if not 1 <= len(body.items) <= JOB_MAX_ITEMS:
        raise InvalidJob(f"a job needs 1 to {JOB_MAX_ITEMS} items")
    if not 1 <= body.batch_size <= MAX_BATCH_SIZE:
        raise InvalidJob(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
    items, problems = [], []
    for seq, item in enumerate(body.items):
        try:
            key = None if item.idempotency_key is UNSET else item.idempotency_key
            amount = amount_from_json(item.amount)
            items.append(transfer_request(item.from_account, item.to_account, amount, key))
        except MoneyError as exc:
            problems.append(f"item {seq}: {exc}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidJob("; ".join(problems[:5]) + more)
    return ValidJob(items, body.batch_size, body.dry_run)


class JobRunner:
    """Submits, inspects and cancels jobs on the primary; ``on_submit`` wakes the local worker."""

    def __init__(self, databases: Databases, schema: str, on_submit: Callable[[], None] = lambda: None) -> None:
        self.databases = databases
        self.schema = schema
        self.on_submit = on_submit

    async def submit(self, job: ValidJob) -> sql.JobRecord:
        """Persist a job (queued); the worker of some sidecar picks it up."""
        async with transaction(self.databases.primary) as conn:
            document = await sql.create_job(conn, self.schema, job.items, job.batch_size, job.dry_run)
        self.on_submit()
        return document

    async def get(self, job_id: int) -> sql.JobRecord:
        """One job; 404 when unknown."""
        async with transaction(self.databases.primary, readonly=True) as conn:
            job = await sql.get_job(conn, self.schema, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="job_not_found")
        return job

    async def list(self, limit: int) -> list[sql.JobRecord]:
        """The most recent jobs."""
        async with transaction(self.databases.primary, readonly=True) as conn:
            return await sql.list_jobs(conn, self.schema, limit)

    async def cancel(self, job_id: int) -> sql.JobRecord:
        """Cancel a queued, running or throttled job; 409 when it has finished, 404 when unknown."""
        async with transaction(self.databases.primary) as conn:
            cancelled, job = await sql.cancel_job(conn, self.schema, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="job_not_found")
        if not cancelled:
            raise Conflict(f"job {job_id} has already finished ({job.status})", code="job_finished")
        return job
