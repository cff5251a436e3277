"""Transfer-batch jobs: /jobs."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from .common import AccountId, Amount, IdempotencyKey, Timestamp
from .vocabulary import JOB_MAX_BATCH_SIZE, JOB_MAX_ITEMS, JobStatus

# -- jobs ---------------------------------------------------------------------------------------


class JobItemRequest(msgspec.Struct, forbid_unknown_fields=True):
    """One transfer of a job (the sidecar derives a key for an item without one)."""

    from_account: AccountId
    to_account: AccountId
    amount: Amount
    idempotency_key: IdempotencyKey | UnsetType = UNSET


class JobRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /jobs."""

    kind: Literal["transfer-batch"]
    items: Annotated[list[JobItemRequest], Meta(min_length=1, max_length=JOB_MAX_ITEMS)]
    batch_size: Annotated[int, Meta(ge=1, le=JOB_MAX_BATCH_SIZE)] = 100
    dry_run: bool = False


class JobItemError(msgspec.Struct):
    """A job item that failed (it changed nothing), or the job itself (no seq and key)."""

    seq: int | None
    idempotency_key: str | None
    code: str | None
    message: str | None


class JobBody(msgspec.Struct):
    """A job's status and progress."""

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
    created_at: Timestamp
    updated_at: Timestamp
    errors: list[JobItemError]


class JobsBody(msgspec.Struct):
    """GET /jobs: the most recent jobs, newest first."""

    jobs: list[JobBody]
