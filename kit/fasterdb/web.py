"""The kit inside a FasterAPI application: the request's context, its headers, and error answers.

``install(app, db)`` opens the pools at startup and closes them at shutdown (the application starts
with the database down), adds a middleware that gives every request a ``RequestState`` — the route
it matched (for ``application_name``), the read-after position it carried, what it wrote and which
server answered its reads — and turns those into the response headers ``Fasterdb-Read-After`` and
``Fasterdb-Served-By``. Errors leave as the contract's JSON body: the kit's own (503 with
``Retry-After`` and a short reason) and any driver error the application did not handle (translated
to a category; the driver's text goes to the log, never to the client).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from FasterAPI import Request, Response

from fasterdb.errors import ServiceError, error_body
from fasterdb.pools.driver import translate
from fasterdb.read_after import ReadAfter

log = logging.getLogger("fasterdb.kit")
READ_AFTER = "fasterdb-read-after"
SERVED_BY = "fasterdb-served-by"
STALE = "fasterdb-stale-seconds"
RETRY_AFTER_SECONDS = 1


@dataclass
class RequestState:
    """What the kit knows about the request being answered."""

    route: str | None  # "GET /items/{item_id}": the matched template, never the concrete path
    read_after: int | None  # the WAL position a verified Fasterdb-Read-After token carried
    write_position: int | None = None  # where this request's last commit ended
    served_by: str | None = None  # "primary" or the replica that answered the last read
    stale_seconds: float | None = None  # set when a read was served past its budget (spill policy "stale")


_current: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar("fasterdb_request", default=None)


def current() -> RequestState | None:
    """The state of the request being answered in this task (None outside a request)."""
    return _current.get()


# ``current()`` without the call: for the kit's own hot paths (every read asks).
current_state = _current.get


def served_by() -> str | None:
    """Which server answered this request's last read: ``primary`` or a replica's name."""
    state = _current.get()
    return state.served_by if state is not None else None


class Templates:
    """The application's route templates, to name a request by its route (not its concrete path)."""

    def __init__(self, routes: list[dict[str, Any]]) -> None:
        self._routes = [(r["method"].upper(), r["path"], [s for s in r["path"].split("/") if s]) for r in routes]

    def match(self, method: str, path: str) -> str | None:
        """``METHOD /template`` of the best match (literal segments win), or None."""
        segments = [s for s in path.split("/") if s]
        best, found = -1, None
        for m, template, parts in self._routes:
            if m != method or len(parts) != len(segments):
                continue
            if all(p.startswith("{") or p == s for p, s in zip(parts, segments, strict=True)):
                literal = sum(not p.startswith("{") for p in parts)
                if literal > best:
                    best, found = literal, template
        return f"{method} {found}" if found is not None else None


class KitMiddleware:
    """ASGI middleware: a RequestState per HTTP request, turned into response headers at the end."""

    def __init__(self, app: Any, tokens: ReadAfter, routes: Any) -> None:
        self.app = app
        self.tokens = tokens
        self.routes = routes  # the FasterAPI app (its .routes are read once, at the first request)
        self._templates: Templates | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._templates is None:
            self._templates = Templates(list(getattr(self.routes, "routes", [])))
        token = None
        for name, value in scope.get("headers", ()):
            if name == READ_AFTER.encode():
                token = value.decode("latin-1")
        state = RequestState(
            route=self._templates.match(scope["method"], scope["path"]),
            read_after=self.tokens.verify(token),
        )
        reset = _current.set(state)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self._headers(state)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            _current.reset(reset)

    def _headers(self, state: RequestState) -> list[tuple[bytes, bytes]]:
        headers = []
        positions = [p for p in (state.write_position, state.read_after) if p is not None]
        if positions:  # the newest position this client has seen, for its next read on any pod
            headers.append((READ_AFTER.encode(), self.tokens.issue(max(positions)).encode()))
        if state.served_by is not None:
            headers.append((SERVED_BY.encode(), state.served_by.encode()))
        if state.stale_seconds is not None:
            headers.append((STALE.encode(), f"{state.stale_seconds:.3f}".encode()))
        return headers


def error_response(error: ServiceError) -> Response:
    """The contract's JSON error body; a 503 says when to retry."""
    headers = {"cache-control": "no-store", **error.headers}
    if error.status == 503:
        headers["retry-after"] = str(RETRY_AFTER_SECONDS)
    body = msgspec.json.encode(error_body(error.code, error.message))
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


async def service_error(request: Request, exc: ServiceError) -> Response:
    """The kit's errors (and the application's, if it raises them)."""
    if exc.status >= 500:
        cause = exc.__cause__
        detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        log.warning("%s %s: %s%s", request.method, request.path, exc.message, detail)
    return error_response(exc)


async def driver_error(request: Request, exc: Exception) -> Response:
    """A driver error the application did not handle: a category for the client, the detail for the log."""
    error = translate(exc, "primary")
    log.warning("%s %s: %s (%s: %s)", request.method, request.path, error.message, type(exc).__name__, exc)
    return error_response(error)


def install(
    app: Any, *, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]], tokens: ReadAfter
) -> None:
    """Wire the kit into a FasterAPI ``app``: ``start``/``stop`` at its lifecycle, request context, errors."""
    app.on_startup(start)
    app.on_shutdown(stop)
    app.add_middleware(KitMiddleware, tokens=tokens, routes=app)
    app.add_exception_handler(ServiceError, service_error)
    for driver in (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
        app.add_exception_handler(driver, driver_error)
