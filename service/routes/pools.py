"""Router: /pools and /pools/stream — live statistics of every pool, PgBouncer ``SHOW POOLS`` style."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable

import msgspec
from FasterAPI import Response

from fasterdb.contract import AppReport, PoolBody, PoolsBody, ReportAccepted, WaitMs
from fasterdb.contract import timestamp as iso
from fasterdb.errors import Forbidden, ServiceError
from fasterdb.pools.databases import Databases

from ..app_reports import AppReports, TooManyProcesses
from ..health.checks import PoolHealth
from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, number
from ..http.sse import EventStream, Streams, event

MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0
EVENT = "pools"  # the event name of every Server-Sent Event of /pools/stream
RETRY_MS = 3000  # how long an EventSource client waits before reconnecting after a lost stream

POOLS = Operation(
    "GET",
    "/pools",
    "pools",
    "Live statistics of every pool: sizes, in use, waiting, acquire waits and timeouts",
    "pools",
    (Reply(200, "pool statistics, primary first", PoolsBody),),
)
STREAM = Operation(
    "GET",
    "/pools/stream",
    "pools_stream",
    "Server-Sent Events: one /pools document per interval",
    "pools",
    (
        Reply(
            200,
            f"text/event-stream: events named '{EVENT}', each with an increasing 'id' and a /pools "
            f"document (JSON) as 'data'; the first also carries 'retry: {RETRY_MS}'",
            None,
            media_type="text/event-stream",
            schema={"type": "string"},
        ),
        Reply(503, "too many event streams are open on this sidecar (too_many_streams); retry later"),
    ),
    params=(
        Param(
            "interval",
            "query",
            {"type": "number", "minimum": MIN_INTERVAL, "maximum": MAX_INTERVAL, "default": 1},
            "seconds between documents",
            number(MIN_INTERVAL, MAX_INTERVAL),
            1.0,
        ),
    ),
)


REPORT = Operation(
    "POST",
    "/pools/report",
    "pools_report",
    "The application's pools (the kit reports them over loopback once per interval)",
    "pools",
    (
        Reply(202, "kept until three intervals old", ReportAccepted),
        Reply(403, "not from the pod's own processes (loopback only)"),
        Reply(503, "reports from too many processes"),
    ),
    body=AppReport,
    body_limit=256 * 1024,
    invalid_code="invalid_report",
    description="Only the pod's own processes can report: a request from any other address is 403, so the "
    "Service cannot reach it. The pools then appear in /pools with source app, and in /metrics.",
)


def loopback(host: str) -> bool:
    """Whether ``host`` (the peer's address) is this machine's loopback, IPv4-mapped forms included."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def app_pool_body(report: AppReport, pool: PoolBody) -> PoolBody:
    """One of an application's pools as /pools shows it: named by its application and process."""
    return msgspec.structs.replace(pool, source="app", app=report.app, instance=report.instance)


def pools_body(databases: Databases, health: PoolHealth, reports: AppReports | None = None) -> PoolsBody:
    """The /pools body. ``ready`` is the pool's latest health check, the same one /health/db serves;
    the application's pools (as reported) follow the sidecar's."""
    pools = []
    for pool in databases:
        check = health.last(pool.name)
        s = pool.snapshot()
        wait = s.acquire_wait_ms
        pools.append(
            PoolBody(
                name=pool.name,
                role=pool.role,
                ready=bool(check and check.ok),
                error=check.error if check else "not checked yet",
                min_size=s.min_size,
                max_size=s.max_size,
                size=s.size,
                idle=s.idle,
                in_use=s.in_use,
                waiting=s.waiting,
                acquired_total=s.acquired_total,
                acquire_timeouts_total=s.acquire_timeouts_total,
                acquire_errors_total=s.acquire_errors_total,
                acquire_wait_ms=WaitMs(wait.p50, wait.p99, wait.max),
            )
        )
    for report in reports.current() if reports is not None else []:
        pools.extend(app_pool_body(report, pool) for pool in report.pools)
    return PoolsBody(collected_at=iso(time.time()), pools=pools)


def register(
    api: Api,
    databases: Databases,
    health: PoolHealth,
    reports: AppReports,
    stopping: Callable[[], bool],
    streams: Streams,
) -> None:
    """The pool statistics endpoints; ``stopping`` ends streams when the sidecar shuts down."""

    async def fresh() -> PoolsBody:
        # Refresh readiness through the single-flight cache (at most one query per pool per TTL).
        await asyncio.gather(*(health.check(p.name) for p in databases))
        return pools_body(databases, health, reports)

    @api.route(REPORT)
    async def report(call: Call) -> Response:
        """Keep an application process's report (loopback only)."""
        client = call.request._scope.get("client") or ("", 0)
        if not loopback(str(client[0])):
            raise Forbidden("pool reports are taken from the pod's own processes only (loopback)")
        try:
            ttl = reports.accept(call.body)
        except TooManyProcesses as exc:
            raise ServiceError(str(exc), code="too_many_reporters", status=503) from None
        return json_reply(ReportAccepted(ttl), 202)

    @api.route(POOLS)
    async def pools(call: Call) -> Response:
        """One document with every pool (primary first, then replicas)."""
        return json_reply(await fresh())

    @api.route(STREAM)
    async def stream(call: Call) -> EventStream:
        """Streams /pools documents until the client goes away or the sidecar stops."""
        every: float = call.params["interval"]

        async def events() -> AsyncIterator[bytes]:
            if call.head:
                return
            loop = asyncio.get_running_loop()
            next_at, number_ = loop.time(), 0
            while not stopping():
                number_ += 1
                data = msgspec.json.encode(await fresh()).decode()
                yield event(EVENT, data, number_, RETRY_MS if number_ == 1 else None)
                next_at += every
                # Sleep in short steps so a shutdown ends the stream promptly.
                while not stopping() and (left := next_at - loop.time()) > 0:
                    await asyncio.sleep(min(left, 0.25))

        return EventStream(call.request, events(), streams, "pools")
