"""SQL of jobs: creation, claiming with a lease (FOR UPDATE SKIP LOCKED), batches, progress."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fasterdb.pools.managed import Connection

from ..db.migrations import qualified
from ..ledger.money import JOB_KEY_PREFIX, TransferRequest
from ..ledger.sql import Outcome, apply_transfers

MAX_ERRORS = 100  # errors kept on the job row (the items keep every failure)
ACTIVE = ("queued", "running", "throttled")

_JOB_COLUMNS = (
    "id, kind, status, total, applied, duplicates, failed, batch_size, dry_run, throttle_reason, errors,"
    " created_at, updated_at"
)


@dataclass(frozen=True)
class JobRecord:
    """One row of the jobs table."""

    job_id: int
    kind: str
    status: str
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


def job_record(row: Any) -> JobRecord:
    """A jobs row as a JobRecord."""
    errors = row["errors"]
    return JobRecord(
        job_id=row["id"],
        kind=row["kind"],
        status=row["status"],
        total=row["total"],
        applied=row["applied"],
        duplicates=row["duplicates"],
        failed=row["failed"],
        batch_size=row["batch_size"],
        dry_run=row["dry_run"],
        throttle_reason=row["throttle_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        errors=json.loads(errors) if isinstance(errors, str) else errors,
    )


async def create_job(
    conn: Connection, schema: str, items: list[TransferRequest], batch_size: int, dry_run: bool
) -> JobRecord:
    """Persist a transfer-batch job and its items; an item without a key gets one in the namespace
    reserved for job items (``fasterdb-job:<job id>:<seq>``), which clients cannot use."""
    s = qualified(schema)
    row = await conn.fetchrow(
        f"INSERT INTO {s}.jobs (kind, status, total, batch_size, dry_run) VALUES ('transfer-batch', 'queued',"
        f" $1, $2, $3) RETURNING {_JOB_COLUMNS}",
        len(items),
        batch_size,
        dry_run,
    )
    job_id = row["id"]
    await conn.copy_records_to_table(
        "job_items",
        schema_name=schema,
        columns=["job_id", "seq", "from_account", "to_account", "amount", "idempotency_key"],
        records=[
            (
                job_id,
                seq,
                i.from_account,
                i.to_account,
                i.amount,
                i.idempotency_key or f"{JOB_KEY_PREFIX}{job_id}:{seq}",
            )
            for seq, i in enumerate(items)
        ],
    )
    return job_record(row)


async def get_job(conn: Connection, schema: str, job_id: int) -> JobRecord | None:
    """One job, or None."""
    row = await conn.fetchrow(f"SELECT {_JOB_COLUMNS} FROM {qualified(schema)}.jobs WHERE id = $1", job_id)
    return job_record(row) if row else None


async def list_jobs(conn: Connection, schema: str, limit: int) -> list[JobRecord]:
    """The most recent jobs first."""
    rows = await conn.fetch(f"SELECT {_JOB_COLUMNS} FROM {qualified(schema)}.jobs ORDER BY id DESC LIMIT $1", limit)
    return [job_record(r) for r in rows]


async def cancel_job(conn: Connection, schema: str, job_id: int) -> tuple[bool, JobRecord | None]:
    """(cancelled now?, the job) — False with the job when it had already finished."""
    s = qualified(schema)
    row = await conn.fetchrow(
        f"UPDATE {s}.jobs SET status = 'cancelled', throttle_reason = NULL, lease_owner = NULL, updated_at = now()"
        f" WHERE id = $1 AND status = ANY($2::text[]) RETURNING {_JOB_COLUMNS}",
        job_id,
        list(ACTIVE),
    )
    if row is not None:
        return True, job_record(row)
    return False, await get_job(conn, schema, job_id)


async def claim_job(conn: Connection, schema: str, owner: str, lease_seconds: float) -> int | None:
    """Take the oldest active job whose lease is free or expired; None when there is none."""
    s = qualified(schema)
    return await conn.fetchval(  # type: ignore[no-any-return]
        f"UPDATE {s}.jobs SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),"
        "  status = CASE WHEN status = 'queued' THEN 'running' ELSE status END, updated_at = now()"
        f" WHERE id = (SELECT id FROM {s}.jobs WHERE status = ANY($3::text[])"
        "   AND (lease_expires_at IS NULL OR lease_expires_at < now())"
        "   ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING id",
        owner,
        lease_seconds,
        list(ACTIVE),
    )


async def hold_lease(
    conn: Connection,
    schema: str,
    job_id: int,
    owner: str,
    lease_seconds: float,
    status: str,
    reason: str | None,
) -> bool:
    """Renew our lease and set running/throttled; False when the lease was lost or the job ended."""
    s = qualified(schema)
    row = await conn.fetchval(
        f"UPDATE {s}.jobs SET lease_expires_at = now() + make_interval(secs => $3), status = $4,"
        "  throttle_reason = $5, updated_at = now()"
        " WHERE id = $1 AND lease_owner = $2 AND status IN ('running', 'throttled') RETURNING id",
        job_id,
        owner,
        lease_seconds,
        status,
        reason,
    )
    return row is not None


@dataclass
class BatchResult:
    """What one batch did."""

    processed: int
    finished: bool  # no pending item left
    lost_lease: bool = False
    outcomes: dict[str, int] | None = None  # applied / duplicate / <failure code> -> count


async def run_batch(
    conn: Connection,
    schema: str,
    job_id: int,
    owner: str,
    lease_seconds: float,
    batch_size: int,
    dry_run: bool,
) -> BatchResult:
    """One transaction: verify the lease, apply the next pending items, record their outcomes.

    The items' statuses and the job's counters commit together with the transfers, so a crash
    anywhere rolls all of it back and the next owner redoes exactly the unfinished items; the
    idempotency keys make a second application impossible in any case.
    """
    s = qualified(schema)
    if not await hold_lease(conn, schema, job_id, owner, lease_seconds, "running", None):
        return BatchResult(0, False, lost_lease=True)
    rows = await conn.fetch(
        f"SELECT seq, from_account, to_account, amount, idempotency_key FROM {s}.job_items"
        " WHERE job_id = $1 AND status = 'pending' ORDER BY seq LIMIT $2 FOR UPDATE",
        job_id,
        batch_size,
    )
    if not rows:
        await conn.execute(
            f"UPDATE {s}.jobs SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL,"
            " throttle_reason = NULL, updated_at = now() WHERE id = $1",
            job_id,
        )
        return BatchResult(0, True)
    items = [TransferRequest(r["from_account"], r["to_account"], r["amount"], r["idempotency_key"]) for r in rows]
    outcomes = await apply_transfers(conn, schema, items, job_id=job_id, dry_run=dry_run)
    await _record(conn, s, job_id, [r["seq"] for r in rows], outcomes)
    tally: dict[str, int] = {}
    for o in outcomes:
        tally[o.code or o.status] = tally.get(o.code or o.status, 0) + 1
    return BatchResult(len(rows), False, outcomes=tally)


async def _record(conn: Connection, s: str, job_id: int, seqs: list[int], outcomes: list[Outcome]) -> None:
    await conn.execute(
        f"UPDATE {s}.job_items AS ji SET status = u.status, error = u.error"
        " FROM unnest($2::int[], $3::text[], $4::text[]) AS u(seq, status, error)"
        " WHERE ji.job_id = $1 AND ji.seq = u.seq",
        job_id,
        seqs,
        [o.status for o in outcomes],
        [o.message for o in outcomes],
    )
    errors = [
        {"seq": seq, "idempotency_key": o.request.idempotency_key, "code": o.code, "message": o.message}
        for seq, o in zip(seqs, outcomes, strict=True)
        if o.status == "failed"
    ]
    await conn.execute(
        f"UPDATE {s}.jobs SET applied = applied + $2, duplicates = duplicates + $3, failed = failed + $4,"
        # Keep the first failures (about MAX_ERRORS; every failure stays on its item row).
        "  errors = CASE WHEN jsonb_array_length(errors) >= $6 THEN errors ELSE errors || $5::jsonb END,"
        "  updated_at = now() WHERE id = $1",
        job_id,
        sum(o.status in ("applied", "validated") for o in outcomes),
        sum(o.status == "duplicate" for o in outcomes),
        len(errors),
        json.dumps(errors),
        MAX_ERRORS,
    )


async def fail_job(conn: Connection, schema: str, job_id: int, owner: str, message: str) -> None:
    """Mark a job failed (after repeated errors that retries did not cure)."""
    s = qualified(schema)
    await conn.execute(
        f"UPDATE {s}.jobs SET status = 'failed', lease_owner = NULL, throttle_reason = NULL,"
        "  errors = errors || jsonb_build_array(jsonb_build_object('code', 'job_failed', 'message', $3::text)),"
        "  updated_at = now() WHERE id = $1 AND lease_owner = $2",
        job_id,
        owner,
        message,
    )
