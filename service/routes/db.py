"""Router: /db/activity, /db/slots, /db/wraparound, /db/budget — what the database itself sees."""

from __future__ import annotations

from typing import Any

from FasterAPI import Response

from fasterdb.contract import ActivityBody, BudgetBody, SlotsBody, WraparoundBody

from ..auth import AdminAuth
from ..catalog.activity import summarize
from ..catalog.budget import Fleet, budget
from ..catalog.retention import slots_body, wraparound_body
from ..catalog.views import Catalog
from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, ParamError, choice, integer

UNAVAILABLE = Reply(503, "the server did not answer within FASTERDB_HEALTH_TIMEOUT (the reason is in the body)")
_APP_NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^[\\x20-\\x7e]+$"}


def _application_name(raw: str) -> str:
    if not raw or len(raw) > 63 or not raw.isascii() or not raw.isprintable():
        raise ParamError("must be 1-63 printable ASCII characters (an application_name prefix)")
    return raw


def register(api: Api, catalog: Catalog, auth: AdminAuth, pool_max: int) -> None:
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
        description="Never the query text. User names and client addresses only with the admin token "
        "(optional here; a wrong token is 401).",
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
            "the application's own pool max per pod",
            integer(0, 10000),
            0,
        ),
        Param(
            "app_name",
            "query",
            _APP_NAME_SCHEMA,
            "application_name prefix of the application's connections (counted by app_pool_max, not as others)",
            _application_name,
        ),
        description="ok up to 80 % of usable, warning up to 100 %, critical beyond.",
    )

    @api.route(activity_op)
    async def activity(call: Call) -> Response:
        """The server's sessions; identities only to the admin token."""
        identities = auth.identifies(call.request)
        seen = await catalog.activity(call.params["pool"])
        return json_reply(summarize(seen.value, seen.pool, seen.at, identities))

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
        fleet = Fleet(p["pods"], p["surge"], p["app_pool_max"], p["app_name"])
        return json_reply(budget(seen.value, fleet, pool_max))
