"""The sidecar's HTTP contract: every request and response body as a msgspec Struct, and its words.

The sidecar encodes its answers with these types, its OpenAPI document is generated from them, and
the admin CLI and the application kit decode the sidecar's answers with them, so the three cannot
drift apart. Request bodies reject unknown fields (a typo in a money field must not be ignored);
response bodies may grow fields (clients must ignore what they do not know). One module per part
of the API; ``vocabulary`` holds the states, limits and thresholds they share.
"""

from .catalog import (
    ActivityBody,
    ApplicationConnections,
    Blocker,
    BudgetBody,
    DatabaseAge,
    LockWaiter,
    PoolGuidance,
    Seconds,
    Session,
    SlotBody,
    SlotsBody,
    WraparoundBody,
)
from .common import AMOUNT_PATTERN, AccountId, Amount, ErrorBody, ErrorDetail, IdempotencyKey, Money, Timestamp
from .health import DbHealthBody, LiveBody, PoolHealth, ReplicaBody, ReplicasBody, StartupBody
from .jobs import JobBody, JobItemError, JobItemRequest, JobRequest, JobsBody
from .ledger import AccountBody, AccountRequest, MigrateBody, SeedBody, SeedRequest, TransferBody, TransferRequest
from .pools import AppReport, PoolBody, PoolsBody, ReportAccepted, WaitMs
from .vocabulary import (
    BUDGET_CRITICAL_RATIO,
    BUDGET_WARNING_RATIO,
    JOB_MAX_BATCH_SIZE,
    JOB_MAX_ITEMS,
    SEED_MAX,
    BudgetStatus,
    JobStatus,
    LifecycleState,
    ReplicaState,
    budget_status,
    timestamp,
)

__all__ = [
    "AccountId",
    "IdempotencyKey",
    "AMOUNT_PATTERN",
    "Amount",
    "Money",
    "Timestamp",
    "ErrorDetail",
    "ErrorBody",
    "LifecycleState",
    "ReplicaState",
    "JobStatus",
    "BudgetStatus",
    "BUDGET_WARNING_RATIO",
    "BUDGET_CRITICAL_RATIO",
    "JOB_MAX_ITEMS",
    "JOB_MAX_BATCH_SIZE",
    "SEED_MAX",
    "budget_status",
    "timestamp",
    "LiveBody",
    "StartupBody",
    "PoolHealth",
    "DbHealthBody",
    "ReplicaBody",
    "ReplicasBody",
    "WaitMs",
    "PoolBody",
    "PoolsBody",
    "AppReport",
    "ReportAccepted",
    "Seconds",
    "Session",
    "LockWaiter",
    "Blocker",
    "ApplicationConnections",
    "ActivityBody",
    "SlotBody",
    "SlotsBody",
    "DatabaseAge",
    "WraparoundBody",
    "PoolGuidance",
    "BudgetBody",
    "MigrateBody",
    "AccountRequest",
    "SeedRequest",
    "SeedBody",
    "AccountBody",
    "TransferRequest",
    "TransferBody",
    "JobItemRequest",
    "JobRequest",
    "JobItemError",
    "JobBody",
    "JobsBody",
]
