"""The database's own view: /db/activity, /db/slots, /db/wraparound, /db/budget."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from .common import Timestamp
from .vocabulary import BudgetStatus

# -- the database's own view (/db/*) -----------------------------------------------------------

Seconds = Annotated[float, Meta(ge=0, description="seconds")]


# Names (application_name, user, client address) go only to a request with the admin token: an
# application_name can carry anything its program put there (a worker was named with an API key).
# Without the token every session is a pid, a state and durations.
Name = str | UnsetType
Address = str | None | UnsetType


class Session(msgspec.Struct, omit_defaults=True):
    """One server session worth naming (never its query text)."""

    pid: int
    state: str | None
    seconds: Seconds
    application: Name = UNSET  # only to a request with the admin token
    user: Name = UNSET  # only to a request with the admin token
    client_addr: Address = UNSET  # only to a request with the admin token


class LockWaiter(msgspec.Struct, omit_defaults=True):
    """A session waiting for a lock, and the sessions it waits for."""

    pid: int
    waiting_seconds: Seconds | None
    blocked_by: list[int]
    application: Name = UNSET
    user: Name = UNSET
    client_addr: Address = UNSET


class Blocker(msgspec.Struct, omit_defaults=True):
    """A session others wait for: what it is doing, and for how long its transaction has run."""

    pid: int
    state: str | None
    xact_seconds: Seconds | None
    blocking: Annotated[int, Meta(ge=1, description="sessions waiting for it")]
    application: Name = UNSET
    user: Name = UNSET
    client_addr: Address = UNSET


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
    by_application: Annotated[
        list[ApplicationConnections] | None,
        Meta(description="connections by application_name; null without the admin token (names are shown only to it)"),
    ]
    oldest_xact_seconds: Seconds | None
    oldest_xact: Session | None
    idle_in_transaction_max_seconds: Seconds | None
    oldest_idle_in_transaction: Session | None
    lock_waiters: list[LockWaiter]
    blockers: list[Blocker]
    longest_lock_wait_seconds: Seconds | None
    identities: Annotated[
        bool,
        Meta(
            description="whether names are included (application names, user names, client addresses): only "
            "with the admin token; without it the body has counts, states, pids and durations only"
        ),
    ]
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


class PoolGuidance(msgspec.Struct):
    """A rule of thumb for a pool's max by workload."""

    workload: str
    pool_max: str
    why: str


class BudgetBody(msgspec.Struct):
    """GET /db/budget: will the fleet's pools exhaust max_connections?"""

    pods: int
    surge: int
    pool_max: Annotated[
        int, Meta(description="this sidecar's FASTERDB_POOL_MAX_SIZE: what maintenance may borrow (not counted)")
    ]
    app_pool_max: Annotated[int, Meta(description="the application's pools' max on the primary, per pod")]
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
    sidecar_per_pod: Annotated[
        int, Meta(description="connections one sidecar keeps on the primary (monitor, pool minimum, job worker)")
    ] = 0
    app_pool_source: Annotated[
        Literal["given", "reported", "none"],
        Meta(description="where app_pool_max comes from: the query, the application's reports, or nowhere"),
    ] = "none"
