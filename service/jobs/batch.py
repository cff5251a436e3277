"""One batch of a job in one transaction: the lease, the next items, the ledger, their outcomes.

The items' statuses and the job's counters commit together with the transfers, so a crash anywhere
rolls all of it back and the next owner redoes exactly the unfinished items; the idempotency keys
make a second application impossible in any case.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fasterdb.pools.managed import Connection

from ..ledger.transfers import apply_transfers
from . import sql


@dataclass
class BatchResult:
    """What one batch did."""

    processed: int
    finished: bool  # no pending item left
    lost_lease: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)  # applied / duplicate / <failure code> -> count


async def run_batch(
    conn: Connection,
    schema: str,
    job_id: int,
    owner: str,
    lease_seconds: float,
    batch_size: int,
    dry_run: bool,
) -> BatchResult:
    """Verify the lease, apply the next pending items, record their outcomes (the caller's transaction)."""
    if not await sql.hold_lease(conn, schema, job_id, owner, lease_seconds, "running", None):
        return BatchResult(0, False, lost_lease=True)
    pending = await sql.pending_items(conn, schema, job_id, batch_size)
    if not pending:
        await sql.finish_job(conn, schema, job_id)
        return BatchResult(0, True)
    outcomes = await apply_transfers(conn, schema, [item for _, item in pending], job_id=job_id, dry_run=dry_run)
    results = [
        sql.ItemResult(seq, o.request.idempotency_key, o.status, o.code, o.message)
        for (seq, _), o in zip(pending, outcomes, strict=True)
    ]
    await sql.record_items(conn, schema, job_id, results)
    return BatchResult(len(pending), False, outcomes=Counter(o.kind for o in outcomes))
