"""SQL of jobs: creation, claiming with a lease (FOR UPDATE SKIP LOCKED), batches, progress."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fasterdb.pools.managed import Connection

from ..db.migrations import qualified
from ..ledger.money import JOB_KEY_PREFIX, TransferRequest
from .model import ACTIVE, COLUMNS, JobRecord, job_record

MAX_ERRORS = 100  # errors kept on the job row (the items keep every failure)


async def create_job(
    conn: Connection, schema: str, items: list[TransferRequest], batch_size: int, dry_run: bool
) -> JobRecord:
    """Persist a transfer-batch job and its items; an item without a key gets one in the namespace
    reserved for job items (``fasterdb-job:<job id>:<seq>``), which clients cannot use."""
    s = qualified(schema)
    row = await conn.fetchrow(
        f"INSERT INTO {s}.jobs (kind, status, total, batch_size, dry_run) VALUES ('transfer-batch', 'queued',"
        f" $1, $2, $3) RETURNING {COLUMNS}",
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
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {qualified(schema)}.jobs WHERE id = $1", job_id)
    return job_record(row) if row else None


async def list_jobs(conn: Connection, schema: str, limit: int) -> list[JobRecord]:
    """The most recent jobs first."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM {qualified(schema)}.jobs ORDER BY id DESC LIMIT $1", limit)
    return [job_record(r) for r in rows]


async def cancel_job(conn: Connection, schema: str, job_id: int) -> tuple[bool, JobRecord | None]:
    """(cancelled now?, the job) — False with the job when it had already finished."""
    s = qualified(schema)
    row = await conn.fetchrow(
        f"UPDATE {s}.jobs SET status = 'cancelled', throttle_reason = NULL, lease_owner = NULL, updated_at = now()"
        f" WHERE id = $1 AND status = ANY($2::text[]) RETURNING {COLUMNS}",
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


async def pending_items(conn: Connection, schema: str, job_id: int, limit: int) -> list[tuple[int, TransferRequest]]:
    """The next ``limit`` pending items of a job, locked: (seq, transfer)."""
    rows = await conn.fetch(
        f"SELECT seq, from_account, to_account, amount, idempotency_key FROM {qualified(schema)}.job_items"
        " WHERE job_id = $1 AND status = 'pending' ORDER BY seq LIMIT $2 FOR UPDATE",
        job_id,
        limit,
    )
    return [
        (r["seq"], TransferRequest(r["from_account"], r["to_account"], r["amount"], r["idempotency_key"])) for r in rows
    ]


async def finish_job(conn: Connection, schema: str, job_id: int) -> None:
    """Mark a job succeeded and release its lease (no pending item is left)."""
    await conn.execute(
        f"UPDATE {qualified(schema)}.jobs SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL,"
        " throttle_reason = NULL, updated_at = now() WHERE id = $1",
        job_id,
    )


@dataclass(frozen=True)
class ItemResult:
    """What happened to one job item, as the job_items and jobs rows record it."""

    seq: int
    idempotency_key: str
    status: str  # applied | duplicate | failed | validated
    code: str | None
    message: str | None


async def record_items(conn: Connection, schema: str, job_id: int, results: list[ItemResult]) -> None:
    """Store each item's outcome, add them to the job's counters, keep the first failures on the job."""
    s = qualified(schema)
    await conn.execute(
        f"UPDATE {s}.job_items AS ji SET status = u.status, error = u.error"
        " FROM unnest($2::int[], $3::text[], $4::text[]) AS u(seq, status, error)"
        " WHERE ji.job_id = $1 AND ji.seq = u.seq",
        job_id,
        [r.seq for r in results],
        [r.status for r in results],
        [r.message for r in results],
    )
    errors: list[dict[str, Any]] = [
        {"seq": r.seq, "idempotency_key": r.idempotency_key, "code": r.code, "message": r.message}
        for r in results
        if r.status == "failed"
    ]
    await conn.execute(
        f"UPDATE {s}.jobs SET applied = applied + $2, duplicates = duplicates + $3, failed = failed + $4,"
        # Keep the first failures (about MAX_ERRORS; every failure stays on its item row).
        "  errors = CASE WHEN jsonb_array_length(errors) >= $6 THEN errors ELSE errors || $5::jsonb END,"
        "  updated_at = now() WHERE id = $1",
        job_id,
        sum(r.status in ("applied", "validated") for r in results),
        sum(r.status == "duplicate" for r in results),
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
