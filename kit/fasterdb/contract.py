"""The HTTP contract: every request and response body as a msgspec Struct.

The sidecar encodes its answers with these types, the OpenAPI document is generated from them
(``service.http.openapi``), and the admin CLI decodes the sidecar's answers with them, so the
three cannot drift apart. Request bodies reject unknown fields (a typo in a money field must not
be ignored); response bodies may grow fields (clients must ignore what they do not know).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

# -- shared field types ------------------------------------------------------------------------

AccountId = Annotated[int, Meta(ge=1, le=2**63 - 1, description="a positive 64-bit account id")]
IdempotencyKey = Annotated[
    str,
    Meta(min_length=1, max_length=200, description="1-200 printable characters; applies the transfer at most once"),
]
# The exact JSON text of an amount: a decimal string (or a JSON number) with at most 2 decimals,
# ASCII digits only. It is kept as raw text so that nothing is read through a float.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,2})?$"
Amount = Annotated[
    Raw,
    Meta(
        extra_json_schema={
            "anyOf": [
                {"type": "string", "pattern": AMOUNT_PATTERN},
                {"type": "number", "minimum": 0, "description": "read as its exact JSON text, never as a float"},
            ],
            "examples": ["10.50"],
            "description": "a decimal with at most 2 decimals: a string (preferred) or a JSON number of that form",
        }
    ),
]
Money = Annotated[str, Meta(description="a decimal string, two decimals", examples=["89.50"])]
Timestamp = Annotated[str, Meta(description="ISO 8601, UTC", examples=["2026-11-24T17:51:00.315Z"])]


class ErrorDetail(msgspec.Struct):
    """What went wrong: a snake_case code and one sentence."""

    code: str
    message: str


class ErrorBody(msgspec.Struct):
    """The body of every error answer."""

    error: ErrorDetail


# -- health -------------------------------------------------------------------------------------


class LiveBody(msgspec.Struct):
    """GET /health/live."""

    status: Literal["ok"]


class StartupBody(msgspec.Struct):
    """GET /health/startup: whether every pool has finished its first connection attempt."""

    status: Literal["started", "starting"]
    state: Literal["starting", "serving", "draining", "stopped"]
    pools: dict[str, bool]
    reason: str | None = None


class PoolHealth(msgspec.Struct):
    """One pool's latest health check."""

    name: str
    ok: bool
    latency_ms: float | None
    error: str | None


class DbHealthBody(msgspec.Struct, omit_defaults=True):
    """GET /health/db: 200 when the primary answers in time, else 503."""

    status: Literal["ok", "unavailable", "draining"]
    primary: PoolHealth
    checked_at: Timestamp
    age_ms: Annotated[int, Meta(ge=0)]
    replicas: list[PoolHealth] | UnsetType = UNSET
    reason: str | UnsetType = UNSET


ReplicaState = Literal[
    "streaming", "catching_up", "replay_paused", "disconnected", "down", "not_replica", "split_brain"
]


class ReplicaBody(msgspec.Struct):
    """One replica's measured lag, judged against the thresholds."""

    name: str
    ok: bool
    state: ReplicaState
    lag_bytes: int | None
    receive_lag_bytes: int | None
    lag_seconds: float | None
    error: str | None


class ReplicasBody(msgspec.Struct):
    """GET /health/replicas: 200 when every replica is within the thresholds, else 503."""

    status: Literal["ok", "lagging", "unavailable"]
    max_lag_bytes: int
    max_lag_seconds: float
    primary_lsn: str | None
    replicas: list[ReplicaBody]


# -- pools --------------------------------------------------------------------------------------


class WaitMs(msgspec.Struct):
    """Acquire waits over the last 60 s, in milliseconds."""

    p50: float
    p99: float
    max: float


class PoolBody(msgspec.Struct):
    """One pool's statistics (PgBouncer SHOW POOLS style)."""

    name: str
    role: Literal["primary", "replica"]
    ready: bool
    error: str | None
    min_size: int
    max_size: int
    size: int
    idle: int
    in_use: int
    waiting: int
    acquired_total: int
    acquire_timeouts_total: int
    acquire_errors_total: int
    acquire_wait_ms: WaitMs


class PoolsBody(msgspec.Struct):
    """GET /pools (and each event of /pools/stream)."""

    collected_at: Timestamp
    pools: list[PoolBody]


# -- the database's own view (/db/*) -----------------------------------------------------------

Seconds = Annotated[float, Meta(ge=0, description="seconds")]


class Session(msgspec.Struct, omit_defaults=True):
    """One server session worth naming (never its query text)."""

    pid: int
    application: str
    state: str | None
    seconds: Seconds
    user: str | UnsetType = UNSET  # only to a request with the admin token
    client_addr: str | None | UnsetType = UNSET  # only to a request with the admin token


class LockWaiter(msgspec.Struct, omit_defaults=True):
    """A session waiting for a lock, and the sessions it waits for."""

    pid: int
    application: str
    waiting_seconds: Seconds | None
    blocked_by: list[int]
    user: str | UnsetType = UNSET
    client_addr: str | None | UnsetType = UNSET


class Blocker(msgspec.Struct, omit_defaults=True):
    """A session others wait for: what it is doing, and for how long its transaction has run."""

    pid: int
    application: str
    state: str | None
    xact_seconds: Seconds | None
    blocking: Annotated[int, Meta(ge=1, description="sessions waiting for it")]
    user: str | UnsetType = UNSET
    client_addr: str | None | UnsetType = UNSET


class ApplicationConnections(msgspec.Struct):
    """The connections of one application_name, by state."""

    application: str
    connections: int
    by_state: dict[str, int]


class ActivityBody(msgspec.Struct):
    """GET /db/activity: the server's sessions, its connection limits and what waits on what."""

    pool: str
    collected_at: Timestamp
    max_connections: int
    superuser_reserved_connections: int
    reserved_connections: Annotated[int, Meta(description="PostgreSQL 16+ (0 before)")]
    usable: Annotated[int, Meta(description="max_connections minus both reserves: what ordinary roles may use")]
    connections: Annotated[int, Meta(description="client backends now")]
    headroom: Annotated[int, Meta(description="connections ordinary roles may still open (usable - connections)")]
    by_state: dict[str, int]
    by_application: list[ApplicationConnections]
    oldest_xact_seconds: Seconds | None
    oldest_xact: Session | None
    idle_in_transaction_max_seconds: Seconds | None
    oldest_idle_in_transaction: Session | None
    lock_waiters: list[LockWaiter]
    blockers: list[Blocker]
    longest_lock_wait_seconds: Seconds | None
    identities: Annotated[bool, Meta(description="whether user names and client addresses are included")]
    unknown_states: Annotated[
        int, Meta(description="sessions whose state the sidecar's role may not see (grant it pg_monitor)")
    ]


class SlotBody(msgspec.Struct):
    """One replication slot."""

    name: str
    type: str
    active: bool
    wal_status: str | None
    safe_wal_size: int | None
    retained_bytes: int | None
    inactive_seconds: Annotated[float | None, Meta(description="PostgreSQL 17+ (null before)")]
    xmin_age: int | None
    catalog_xmin_age: int | None
    temporary: bool
    database: str | None


class SlotsBody(msgspec.Struct):
    """GET /db/slots."""

    pool: str
    collected_at: Timestamp
    slots: list[SlotBody]


class DatabaseAge(msgspec.Struct):
    """One database's transaction-ID and multixact-ID age, and as a fraction of the wraparound limit."""

    name: str
    xid_age: int
    mxid_age: int
    xid_ratio: Annotated[float, Meta(description="xid_age / 2^31: at 1 the server stops assigning IDs")]
    mxid_ratio: float


class WraparoundBody(msgspec.Struct):
    """GET /db/wraparound."""

    pool: str
    collected_at: Timestamp
    databases: list[DatabaseAge]
    autovacuum_freeze_max_age: int
    autovacuum_multixact_freeze_max_age: int
    max_xid_ratio: float
    max_mxid_ratio: float


BudgetStatus = Literal["ok", "warning", "critical"]
# /db/budget's verdict: warning above this share of the usable connections, critical above that.
BUDGET_WARNING_RATIO, BUDGET_CRITICAL_RATIO = 0.8, 1.0


class PoolGuidance(msgspec.Struct):
    """A rule of thumb for a pool's max by workload."""

    workload: str
    pool_max: str
    why: str


class BudgetBody(msgspec.Struct):
    """GET /db/budget: will the fleet's pools exhaust max_connections?"""

    pods: int
    surge: int
    pool_max: Annotated[int, Meta(description="this sidecar's FASTERDB_POOL_MAX_SIZE")]
    app_pool_max: Annotated[int, Meta(description="the application's own pool max per pod (as given)")]
    per_pod: Annotated[int, Meta(description="connections one pod may open to the primary")]
    fleet: Annotated[int, Meta(description="(pods + surge) x per_pod")]
    others: Annotated[int, Meta(description="client backends now open that are not the fleet's")]
    required: int
    usable: int
    ratio: float
    status: BudgetStatus
    recommended_pool_max: Annotated[
        int, Meta(description="the largest pool max that keeps required at or below 80 % of usable (0: none fits)")
    ]
    max_connections: int
    reserved_connections: int
    superuser_reserved_connections: int
    guidance: list[PoolGuidance]


# -- admin: migrations, accounts, transfers -----------------------------------------------------


class MigrateBody(msgspec.Struct):
    """POST /admin/migrate."""

    schema: str
    version: int
    applied: list[int]


class AccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /accounts."""

    id: AccountId
    balance: Amount


JOB_MAX_ITEMS = 100_000  # transfers in one job
SEED_MAX = 10_000  # accounts per seed request: one short transaction each


class SeedRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /accounts/seed: open accounts start..start+count-1 with the same balance."""

    start: AccountId
    count: Annotated[int, Meta(ge=1, le=SEED_MAX, description=f"at most {SEED_MAX} per request")]
    balance: Amount


class SeedBody(msgspec.Struct):
    """How many of the accounts were created, and how many existed already (left as they are)."""

    first_id: int
    last_id: int
    created: int
    existing: int


class AccountBody(msgspec.Struct, omit_defaults=True):
    """An account and where its balance was read."""

    id: int
    balance: Money
    source: str | UnsetType = UNSET


class TransferRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /transfers."""

    from_account: AccountId
    to_account: AccountId
    amount: Amount
    idempotency_key: IdempotencyKey


class TransferBody(msgspec.Struct):
    """An applied transfer (``duplicate``: applied earlier with this key)."""

    transfer_id: int
    status: Literal["applied"]
    duplicate: bool
    from_account: int
    to_account: int
    amount: Money
    from_balance: Money
    to_balance: Money
    idempotency_key: str


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
    batch_size: Annotated[int, Meta(ge=1, le=1000)] = 100
    dry_run: bool = False


class JobItemError(msgspec.Struct):
    """A job item that failed (it changed nothing), or the job itself (no seq and key)."""

    seq: int | None
    idempotency_key: str | None
    code: str | None
    message: str | None


JobStatus = Literal["queued", "running", "throttled", "succeeded", "failed", "cancelled"]


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
