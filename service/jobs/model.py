"""A job as the domain sees it: one row of the jobs table, and what a valid submission is.

``JobRecord`` is the one definition of the row's shape: the SQL column list and the mapping of a
row are derived from its fields, and the HTTP body (``fasterdb.contract.JobBody``) has the same
field names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from fasterdb.contract import JOB_MAX_BATCH_SIZE, JOB_MAX_ITEMS, JobStatus

from ..ledger.money import TransferRequest

KINDS = ("transfer-batch",)
ACTIVE: tuple[JobStatus, ...] = ("queued", "running", "throttled")


@dataclass(frozen=True)
class JobRecord:
    """One row of the jobs table."""

    job_id: int
    kind: str
    status: JobStatus
    total: int
    applied: int
    duplicates: int
    failed: int
    batch_size: int
    dry_run: bool
    throttle_reason: str | None
    created_at: datetime
    updated_at: datetime
    errors: list[dict[str, Any]]  # {"seq", "idempotency_key", "code", "message"} (job-level: no seq/key)


def _column(field: str) -> str:
    return "id" if field == "job_id" else field


# The jobs table's columns in JobRecord's order, for SELECT and RETURNING.
COLUMNS = ", ".join(_column(f.name) for f in fields(JobRecord))


def job_record(row: Any) -> JobRecord:
    """A jobs row (selected with COLUMNS) as a JobRecord."""
    values = {f.name: row[_column(f.name)] for f in fields(JobRecord)}
    if isinstance(values["errors"], str):  # jsonb arrives as text without a type codec
        values["errors"] = json.loads(values["errors"])
    return JobRecord(**values)


class InvalidJob(ValueError):
    """A job submission that is refused; the message says why (422 ``invalid_job``)."""


@dataclass(frozen=True)
class ValidJob:
    """A validated job submission (an item without a key gets one when the job is stored)."""

    items: list[TransferRequest]
    batch_size: int
    dry_run: bool


def check_job(kind: str, items: list[TransferRequest], batch_size: int, dry_run: bool) -> ValidJob:
    """The job-level rules (the items were each checked already)."""
    if kind not in KINDS:
        raise InvalidJob(f"unknown job kind {kind!r}: only {', '.join(KINDS)} exists")
    if not 1 <= len(items) <= JOB_MAX_ITEMS:
        raise InvalidJob(f"a job needs 1 to {JOB_MAX_ITEMS} items")
    if not 1 <= batch_size <= JOB_MAX_BATCH_SIZE:
        raise InvalidJob(f"batch_size must be between 1 and {JOB_MAX_BATCH_SIZE}")
    return ValidJob(items, batch_size, dry_run)
