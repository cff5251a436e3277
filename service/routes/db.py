"""Router: /db/activity, /db/slots, /db/wraparound, /db/budget — what the database itself sees."""

from __future__ import annotations

import math
from typing import Any

from FasterAPI import Response

from fasterdb.contract import (
    ActivityBody,
    ApplicationConnections,
    Blocker,
    BudgetBody,
    DatabaseAge,
    LockWaiter,
    PoolGuidance,
    Session,
    SlotBody,
    SlotsBody,
    WraparoundBody,
    timestamp,
)

from ..app_reports import AppReports
from ..auth import AdminAuth
from ..catalog.activity import UNKNOWN_STATE, ActivitySummary, summarize
from ..catalog.budget import GUIDANCE, Budget, Fleet, budget
from ..catalog.sql import Activity, Backend, Slot, Wraparound
from ..catalog.views import Catalog
from ..catalog.wraparound import worst_ratios, wraparound_ratio
from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, ParamError, choice, integer

UNAVAILABLE = Reply(503, "the server did not answer within FASTERDB_HEALTH_TIMEOUT (the reason is in the body)")
_APP_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^[\\x20-\\x7e]+$"}


def _application_name(raw: str) -> str:
    if not raw or len(raw) > 63 or not raw.isascii() or not raw.isprintable():
        raise ParamError("must be 1-63 printable ASCII characters (an application_name prefix)")
    return raw


def _who(backend: Backend, identities: bool) -> dict[str, Any]:
    """The session's names, for the admin token only (an application_name can carry anything)."""
    if not identities:
        return {}
    return {"application": backend.application, "user": backend.user or "", "client_addr": backend.client_addr}


def _session(backend: Backend | None, seconds: float | None, identities: bool) -> Session | None:
    if backend is None:
        return None
    return Session(backend.pid, backend.state, max(0.0, seconds or 0.0), **_who(backend, identities))


def activity_body(summary: ActivitySummary, pool: str, at: float, identities: bool) -> ActivityBody:
    """The /db/activity body; application names, user names and client addresses only when ``identities``."""
    activity, oldest, idle = summary.activity, summary.oldest_xact, summary.oldest_idle_in_transaction
    blockers = []
    for blocking in summary.blockers:
        b = blocking.backend
        if b is None:
            blockers.append(
                Blocker(blocking.pid, None, None, blocking.waiters, **({"application": ""} if identities else {}))
            )
        else:
            blockers.append(Blocker(b.pid, b.state, b.xact_seconds, blocking.waiters, **_who(b, identities)))
    return ActivityBody(
        pool=pool,
        collected_at=timestamp(at),
        max_connections=activity.max_connections,
        superuser_reserved_connections=activity.superuser_reserved,
        reserved_connections=activity.reserved,
        usable=summary.usable,
        connections=summary.connections,
        headroom=summary.headroom,
        by_state=summary.by_state,
        by_application=[
            ApplicationConnections(name, sum(states.values()), states) for name, states in summary.by_application
        ]
        if identities
        else None,
        oldest_xact_seconds=oldest.xact_seconds if oldest else None,
        oldest_xact=_session(oldest, oldest.xact_seconds if oldest else None, identities),
        idle_in_transaction_max_seconds=idle.state_seconds if idle else None,
        oldest_idle_in_transaction=_session(idle, idle.state_seconds if idle else None, identities),
        lock_waiters=[
            LockWaiter(b.pid, b.lock_wait_seconds, sorted(set(b.blocked_by or [])), **_who(b, identities))
            for b in summary.lock_waiters
        ],
        blockers=blockers,
        longest_lock_wait_seconds=summary.longest_lock_wait_seconds,
        identities=identities,
        unknown_states=summary.by_state.get(UNKNOWN_STATE, 0),
    )


def slots_body(slots: list[Slot], pool: str, at: float) -> SlotsBody:
    """The /db/slots body."""
    return SlotsBody(
        pool=pool,
        collected_at=timestamp(at),
        slots=[
            SlotBody(
                s.name,
                s.type,
                s.active,
                s.wal_status,
                s.safe_wal_size,
                s.retained_bytes,
                s.inactive_seconds,
                s.xmin_age,
                s.catalog_xmin_age,
                s.temporary,
                s.database,
            )
            for s in slots
        ],
    )


def wraparound_body(view: Wraparound, pool: str, at: float) -> WraparoundBody:
    """The /db/wraparound body: each database's ages as a fraction of the wraparound limit."""
    worst_xid, worst_mxid = worst_ratios(view)
    return WraparoundBody(
        pool=pool,
        collected_at=timestamp(at),
        databases=[
            DatabaseAge(d.name, d.xid_age, d.mxid_age, wraparound_ratio(d.xid_age), wraparound_ratio(d.mxid_age))
            for d in view.databases
        ],
        autovacuum_freeze_max_age=view.freeze_max_age,
        autovacuum_multixact_freeze_max_age=view.multixact_freeze_max_age,
        max_xid_ratio=worst_xid,
        max_mxid_ratio=worst_mxid,
    )


def budget_body(b: Budget, activity: Activity, app_pool_source: str) -> BudgetBody:
    """The /db/budget body."""
    return BudgetBody(
        pods=b.fleet.pods,
        surge=b.fleet.surge,
        pool_max=b.pool_max,
        sidecar_per_pod=b.sidecar,
        app_pool_max=b.fleet.app_pool_max,
        app_pool_source=app_pool_source,  # type: ignore[arg-type]  # given | reported | none
        per_pod=b.per_pod,
        fleet=b.connections,
        others=b.others,
        required=b.required,
        usable=b.usable,
        ratio=round(b.ratio, 4) if math.isfinite(b.ratio) else 1e9,
        status=b.status,
        recommended_pool_max=b.recommended_pool_max,
        max_connections=activity.max_connections,
        reserved_connections=activity.reserved,
        superuser_reserved_connections=activity.superuser_reserved,
        guidance=[PoolGuidance(*g) for g in GUIDANCE],
    )


def register(api: Api, catalog: Catalog, auth: AdminAuth, reports: AppReports, sidecar: int, pool_max: int) -> None:
    """The database-view endpoints, reading the server only through ``catalog``'s caches."""
    names = [p.name for p in catalog.databases]
    pool = Param(
        "pool",
        "query",
        {"type": "string", "enum": names},
        "the pool whose server to ask (default: primary)",
        choice(*names),
    )

    def op(path: str, op_id: str, summary: str, body: Any, *params: Param, description: str = "") -> Operation:
        return Operation(
            "GET",
            path,
            op_id,
            summary,
            "database",
            (Reply(200, summary, body), UNAVAILABLE),
            params=params,
            description=description,
        )

    activity_op = op(
        "/db/activity",
        "db_activity",
        "Sessions by state and application, connection limits and headroom, old transactions, lock waits",
        ActivityBody,
        pool,
        description="Never the query text. Without the admin token: counts, states, pids and durations only; "
        "application names (by_application, each session's application), user names and client addresses only "
        "with it (optional here; a wrong token is 401).",
    )
    slots_op = op(
        "/db/slots", "db_slots", "Replication slots: activity, WAL status, retained bytes, xmin age", SlotsBody, pool
    )
    wrap_op = op(
        "/db/wraparound",
        "db_wraparound",
        "Transaction-ID and multixact-ID age of every database, as a fraction of the wraparound limit",
        WraparoundBody,
        pool,
    )
    budget_op = op(
        "/db/budget",
        "db_budget",
        "Connection budget: the fleet's pools plus everyone else against the primary's usable connections",
        BudgetBody,
        Param(
            "pods",
            "query",
            {"type": "integer", "minimum": 1, "maximum": 100000},
            "pods at most (e.g. the HPA maximum)",
            integer(1, 100000),
            1,
        ),
        Param(
            "surge",
            "query",
            {"type": "integer", "minimum": 0, "maximum": 100000},
            "extra pods during a rolling update (maxSurge)",
            integer(0, 100000),
            0,
        ),
        Param(
            "app_pool_max",
            "query",
            {"type": "integer", "minimum": 0, "maximum": 10000},
            "the application's pools' max on the primary per pod (default: as this pod's application reports it)",
            integer(0, 10000),
        ),
        Param(
            "app_name",
            "query",
            _APP_NAME_SCHEMA,
            "application_name prefix of the application's connections (default: the reporting applications')",
            _application_name,
        ),
        description="ok up to 80 % of usable, warning up to 100 %, critical beyond.",
    )

    @api.route(activity_op)
    async def activity(call: Call) -> Response:
        """The server's sessions; identities only to the admin token."""
        identities = auth.identifies(call.request)
        seen = await catalog.activity(call.params["pool"])
        return json_reply(activity_body(summarize(seen.value), seen.pool, seen.at, identities))

    @api.route(slots_op)
    async def slots(call: Call) -> Response:
        """Every replication slot of the server."""
        seen = await catalog.slots(call.params["pool"])
        return json_reply(slots_body(seen.value, seen.pool, seen.at))

    @api.route(wrap_op)
    async def wraparound(call: Call) -> Response:
        """Every database's transaction-ID age."""
        seen = await catalog.wraparound(call.params["pool"])
        return json_reply(wraparound_body(seen.value, seen.pool, seen.at))

    @api.route(budget_op)
    async def connection_budget(call: Call) -> Response:
        """Will the fleet exhaust the primary's max_connections?"""
        p = call.params
        seen = await catalog.activity()
        reported = reports.current()
        app_pool_max, source = p["app_pool_max"], "given"
        if app_pool_max is None:
            app_pool_max = reports.primary_pool_max()
            source = "reported" if reported else "none"
        names = (p["app_name"],) if p["app_name"] else tuple(sorted({r.app for r in reported}))
        fleet = Fleet(p["pods"], p["surge"], app_pool_max, names)
        return json_reply(budget_body(budget(seen.value, fleet, sidecar, pool_max), seen.value, source))
