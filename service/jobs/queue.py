"""The job queue: submitting, reading and cancelling transfer-batch jobs on the primary.

A job is a persisted list of transfers; the worker (``jobs.worker``) of some sidecar runs it.
"""

from __future__ import annotations

from collections.abc import Callable

from fasterdb.errors import Conflict, NotFound
from fasterdb.pools.databases import Databases
from fasterdb.pools.transactions import transaction

from . import sql
from .model import JobRecord, ValidJob


class JobQueue:
    """Submits, inspects and cancels jobs on the primary; ``on_submit`` wakes the local worker."""

    def __init__(self, databases: Databases, schema: str, on_submit: Callable[[], None] = lambda: None) -> None:
        self.databases = databases
        self.schema = schema
        self.on_submit = on_submit

    async def submit(self, job: ValidJob) -> JobRecord:
        """Persist a job (queued); the worker of some sidecar picks it up."""
        async with transaction(self.databases.primary) as conn:
            document = await sql.create_job(conn, self.schema, job.items, job.batch_size, job.dry_run)
        self.on_submit()
        return document

    async def get(self, job_id: int) -> JobRecord:
        """One job; 404 when unknown."""
        async with transaction(self.databases.primary, readonly=True) as conn:
            job = await sql.get_job(conn, self.schema, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="job_not_found")
        return job

    async def list(self, limit: int) -> list[JobRecord]:
        """The most recent jobs."""
        async with transaction(self.databases.primary, readonly=True) as conn:
            return await sql.list_jobs(conn, self.schema, limit)

    async def cancel(self, job_id: int) -> JobRecord:
        """Cancel a queued, running or throttled job; 409 when it has finished, 404 when unknown."""
        async with transaction(self.databases.primary) as conn:
            cancelled, job = await sql.cancel_job(conn, self.schema, job_id)
        if job is None:
            raise NotFound(f"job {job_id} does not exist", code="job_not_found")
        if not cancelled:
            raise Conflict(f"job {job_id} has already finished ({job.status})", code="job_finished")
        return job
