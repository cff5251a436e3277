"""The typed operation registry: one declaration per route, from which everything is derived.

An ``Operation`` names its method and path, its parameters, its request body type and the
responses it can give. ``Api.route(op)`` registers the handler behind a wrapper that checks the
bearer token (admin operations), parses the parameters and the body, and encodes the handler's
msgspec Struct; the same declarations generate the OpenAPI document (``http.openapi``)
and tell the conventions middleware which methods a path allows (405, OPTIONS, HEAD).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from FasterAPI import FasterRouter, Request, Response

from fasterdb.contract import ErrorBody
from fasterdb.errors import Unprocessable

from ..auth import AdminAuth
from .params import Param, parse_params

S = TypeVar("S", bound=msgspec.Struct)
NO_STORE = {"cache-control": "no-store"}
# The error answers every operation of a kind can give, documented automatically.
_AUTO_ERRORS = {
    400: "invalid parameter",
    401: "missing or wrong bearer token",
    403: "admin endpoints are disabled (no FASTERDB_ADMIN_TOKEN on the sidecar)",
    413: "request body too large",
    422: "invalid request body",
}


@dataclass(frozen=True)
class Reply:
    """One documented response: status, meaning, and its body (a Struct type, or a raw schema)."""

    status: int
    description: str
    body: type[msgspec.Struct] | None = ErrorBody
    media_type: str = "application/json"
    schema: dict[str, Any] | None = None  # for bodies that are not JSON Structs (text, HTML, SSE)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One route: everything a client, the OpenAPI document and the middleware need to know."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    params: tuple[Param, ...] = ()
    body: type[msgspec.Struct] | None = None
    body_limit: int = 64 * 1024
    invalid_code: str = "invalid_request"  # the error code of a body that cannot be read (422)
    example: dict[str, Any] | None = None  # a valid request body, for the document and Swagger UI
    admin: bool = False
    description: str = ""
    # False for a page's own files (Swagger UI's scripts and styles): routed, HEAD and 405 like any
    # operation, but not API operations, so not in /openapi.json (nor listed by Swagger UI).
    in_schema: bool = True

    def all_replies(self) -> list[Reply]:
        """The declared replies plus the automatic error replies of this kind of operation."""
        replies = {r.status: r for r in self.replies}
        automatic = []
        if any(p.where == "query" for p in self.params) or any(p.where == "path" for p in self.params):
            automatic.append(400)
        if self.admin:
            automatic += [401, 403]
        if self.body is not None:
            automatic += [413, 422]
        for status in automatic:
            replies.setdefault(status, Reply(status, _AUTO_ERRORS[status], headers=_auth_headers(status)))
        return [replies[s] for s in sorted(replies)]


def _auth_headers(status: int) -> dict[str, dict[str, Any]]:
    if status != 401:
        return {}
    return {"WWW-Authenticate": {"description": "Bearer (RFC 6750)", "schema": {"type": "string"}}}


@dataclass
class Call:
    """What a handler receives: the request, its parsed parameters and its decoded body."""

    request: Request
    params: dict[str, Any]
    body: Any = None

    @property
    def head(self) -> bool:
        """Whether the client asked with HEAD (the handler may skip work that only makes a body)."""
        return bool(self.request._scope.get("fasterdb.head"))


class Sized(Response):  # type: ignore[misc]  # FasterAPI ships no type information
    """FasterAPI's ``Response`` with ``Content-Length``: every answer of the sidecar is one of these.

    FasterAPI 0.2.14 sends no Content-Length, and uvicorn then frames every answer as
    ``transfer-encoding: chunked`` — an extra write per answer, and a framing an HTTP/1.0 client
    cannot read. Only streams (Server-Sent Events) go without a length: chunked for HTTP/1.1,
    ended by closing the connection for HTTP/1.0 (``http.protocol``).
    """

    def _build_headers(self) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = super()._build_headers()
        headers.append((b"content-length", b"%d" % len(self.body)))
        return headers


def json_reply(body: msgspec.Struct | list[Any] | dict[str, Any], status: int = 200) -> Response:
    """A JSON answer (msgspec-encoded) that caches and proxies must not keep."""
    return Sized(msgspec.json.encode(body), status_code=status, headers=dict(NO_STORE), media_type="application/json")


class Reusable(Sized):
    """A JSON answer made once and sent as often as it is returned: a handler that answers many
    requests alike (a probe) keeps one instead of building a response and its headers per request.

    Nothing on the way out changes a response object (FasterAPI only calls ``to_asgi``); each send
    gets its own list of headers, since middleware may add to a message's list.
    """

    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__(body, status_code=status, headers=dict(NO_STORE), media_type="application/json")
        self._raw = super()._build_headers()

    def _build_headers(self) -> list[tuple[bytes, bytes]]:
        return list(self._raw)


class LastReply:
    """A handler's last ``Reusable`` answer and what it was made of: requests that would get the
    same answer (a probe, within the same millisecond of the same cached measurement) get that
    object again, without building and encoding it."""

    __slots__ = ("_made_of", "_reply")

    def __init__(self) -> None:
        self._made_of: tuple[object, ...] | None = None
        self._reply: Reusable | None = None

    def get(self, made_of: tuple[object, ...]) -> Reusable | None:
        """The last answer if it was made of the same things, else None."""
        return self._reply if self._made_of == made_of else None

    def keep(self, made_of: tuple[object, ...], body: bytes, status: int) -> Reusable:
        """Make the answer for ``made_of`` and keep it for the next requests."""
        self._made_of, self._reply = made_of, Reusable(body, status)
        return self._reply


Handler = Callable[[Call], Awaitable[Any]]


class Api:
    """The registry of operations and the router they are served by."""

    def __init__(self, auth: AdminAuth) -> None:
        self.auth = auth
        self.operations: list[Operation] = []
        self.router = FasterRouter()

    def route(self, op: Operation, *, on_invalid: Callable[[], None] | None = None) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``op``: auth, parameters and body are handled before it runs.

        ``on_invalid`` is called when the handler or the body reading refuses the request (422).
        """

        def register(handler: Handler) -> Handler:
            auth, params, body_type = self.auth, op.params, op.body

            async def endpoint(request: Request) -> Any:
                if op.admin:
                    auth.check(request)
                query = request._scope.get("query_string", b"")
                call = Call(request, parse_params(params, query, request.path_params))
                try:
                    if body_type is not None:
                        call.body = await read_json(request, body_type, op.body_limit, op.invalid_code)
                    return await handler(call)
                except Unprocessable:
                    if on_invalid is not None:
                        on_invalid()
                    raise

            endpoint.__name__ = op.operation_id
            self.router._add_route(
                op.method,
                op.path,
                endpoint,
                tags=[op.tag],
                summary=op.summary,
                response_model=None,
                status_code=200,
                deprecated=False,
                responses=None,
                dependencies=None,
            )
            self.operations.append(op)
            return handler

        return register


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, refused (413) beyond ``limit`` bytes.

    FasterAPI 0.2.14 offers the raw body only through ``Request._read_body`` (``json()`` would turn
    amounts into floats), which reads all of it, whatever its size, before anyone can look: the body
    is read here from the ASGI messages (``Request._receive``), and reading stops past ``limit``
    (a chunked body declares no length to refuse it by; uvicorn reads no more than 64 KiB ahead of
    this). This is the one place that touches them.
    """
    from fasterdb.errors import ServiceError

    too_large = ServiceError(f"request body larger than {limit} bytes", code="request_too_large", status=413)
    too_large.headers["connection"] = "close"  # the rest of the body is not read (http.protocol)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    while True:
        message = await request._receive()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(parts)
    request._body, request._body_read = raw, True  # as Request._read_body leaves it
    return raw


async def read_json(request: Request, kind: type[S], limit: int, code: str = "invalid_request") -> S:
    """Read and decode a JSON body into ``kind`` (msgspec: strict types, unknown fields refused).

    Anything wrong — too large, not JSON, wrong types — is a 422 with ``code`` and one sentence
    (413 for a body over ``limit``). Domain checks (money, keys) come after, in the handler.
    """
    raw = await read_body(request, limit)
    if not raw.strip():
        raise Unprocessable("the request body is empty; send a JSON object", code=code)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise Unprocessable(f"invalid request body: {exc}", code=code) from None
    except msgspec.DecodeError as exc:
        raise Unprocessable(f"the request body is not valid JSON: {exc}", code=code) from None
