"""The contract's words: states, limits and verdict thresholds, each defined once.

Domain code, the HTTP bodies and the CLI all take these from here, so a state or a limit cannot
mean one thing on the server and another in a client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

LifecycleState = Literal["starting", "serving", "draining", "stopped"]
ReplicaState = Literal[
    "streaming", "catching_up", "replay_paused", "disconnected", "down", "not_replica", "split_brain"
]
JobStatus = Literal["queued", "running", "throttled", "succeeded", "failed", "cancelled"]
BudgetStatus = Literal["ok", "warning", "critical"]

# /db/budget's verdict: warning above this share of the usable connections, critical above that.
BUDGET_WARNING_RATIO, BUDGET_CRITICAL_RATIO = 0.8, 1.0

JOB_MAX_ITEMS = 100_000  # transfers in one job
JOB_MAX_BATCH_SIZE = 1000  # transfers per batch (one transaction)
SEED_MAX = 10_000  # accounts per seed request: one short transaction each


def budget_status(ratio: float) -> BudgetStatus:
    """ok up to 80 % of the usable connections, warning up to 100 %, critical beyond."""
    if ratio > BUDGET_CRITICAL_RATIO:
        return "critical"
    return "warning" if ratio > BUDGET_WARNING_RATIO else "ok"


def timestamp(ts: float) -> str:
    """An epoch timestamp as the contract writes it: ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
