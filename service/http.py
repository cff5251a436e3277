"""The HTTP edge's shared pieces: JSON responses, query parsing, error rendering and logging."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from FasterAPI import HTTPException, JSONResponse, Request, RequestValidationError

from service.errors import BadRequest, ServiceError, Unprocessable, error_body
from service.sizes import SizeError, parse_size

log = logging.getLogger("fasterdb.http")
S = TypeVar("S", bound=msgspec.Struct)
T = TypeVar("T")

_NO_STORE = {"cache-control": "no-store"}

# OpenAPI shapes shared by the admin routers: an account id and an amount as the server accepts them.
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
MONEY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,14}(\.[0-9]{1,2})?)$",
    "example": "10.50",
}
_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    422: "invalid_request",
    500: "internal_error",
    503: "service_unavailable",
}


def json_response(body: Any, status: int = 200) -> JSONResponse:
    """A JSON response that caches and proxies must not keep (health and statistics change)."""
    return JSONResponse(body, status_code=status, headers=dict(_NO_STORE))


# ---------------------------------------------------------------------------
# Query parameters: FasterAPI 0.2.14 passes them as raw strings, unvalidated.
# ---------------------------------------------------------------------------


def query_doc(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An OpenAPI query parameter with its real type (the framework would document a string)."""
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def query_bool(raw: str | None, name: str, default: bool = False) -> bool:
    """``true/false/1/0/yes/no`` (any case); anything else is a 400."""
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise BadRequest(f"query parameter {name!r} must be true or false")


def query_float(raw: str | None, name: str, default: float, *, minimum: float = 0.0, maximum: float = 86400.0) -> float:
    """A finite number within [minimum, maximum]; anything else is a 400."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be a number of seconds") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise BadRequest(f"query parameter {name!r} must be between {minimum:g} and {maximum:g}")
    return value


def query_size(raw: str | None, name: str, default: int) -> int:
    """A byte size such as ``16MB`` or ``1048576``; anything else is a 400 (never "no limit")."""
    if raw is None:
        return default
    try:
        return parse_size(raw)
    except SizeError as exc:
        raise BadRequest(f"query parameter {name!r}: {exc}") from None


# ---------------------------------------------------------------------------
# Errors: every error leaves as {"error": {"code", "message"}}.
# ---------------------------------------------------------------------------


async def service_error_handler(request: Request, exc: ServiceError) -> JSONResponse:
    """Render one of our errors."""
    return json_response(exc.body(), exc.status)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Log an unexpected exception with its traceback (the framework logs nothing) and answer 500."""
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return json_response(error_body("internal_error", "internal error; see the sidecar's log"), 500)


def _raw(status: int, body: dict[str, Any]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, msgspec.json.encode(body), [(b"content-type", b"application/json")]


async def validation_error_handler(
    request: Request, exc: RequestValidationError
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The framework's request-validation failure (msgspec), in our body shape."""
    first = exc.errors[0] if exc.errors else {}
    message = str(first.get("msg") or "the request is not valid")
    return _raw(422, error_body("invalid_request", f"invalid request: {message}"))


async def http_exception_handler(request: Request, exc: HTTPException) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """A framework HTTPException, in our body shape."""
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return _raw(exc.status_code, error_body(_STATUS_CODES.get(exc.status_code, "error"), message))


class ErrorBodyMiddleware:
    """Rewrites the framework's own ``{"detail": …}`` error bodies (unknown route, its 500) to ours."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] | None = None

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if held is not None and message["type"] == "http.response.body":
                start, held = held, None
                if not message.get("more_body"):
                    body = _rewrite(start["status"], message.get("body", b""), scope)
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
                await send(start)
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _rewrite(status: int, body: bytes, scope: dict[str, Any]) -> bytes:
    try:
        doc = msgspec.json.decode(body) if body else {"detail": None}
    except msgspec.DecodeError:
        return body
    if not isinstance(doc, dict) or "detail" not in doc:
        return body  # ours (or a deliberate non-error body such as /health/db's 503)
    if status == 404 and doc.get("detail") == "Not Found":
        message = f"no such endpoint: {scope.get('method', 'GET')} {scope.get('path', '')}"
    elif isinstance(doc.get("detail"), str):
        message = doc["detail"]
    else:
        message = "request failed"
    return msgspec.json.encode(error_body(_STATUS_CODES.get(status, "error"), message))


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, refused (413) beyond ``limit`` bytes.

    FasterAPI 0.2.14 offers the raw body only through ``Request._read_body`` (``json()`` would turn
    amounts into floats), so this is the one place that touches it.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(f"request body larger than {limit} bytes", code="request_too_large", status=413)
    raw: bytes = await request._read_body()
    if len(raw) > limit:
        raise ServiceError(f"request body larger than {limit} bytes", code="request_too_large", status=413)
    return raw


def path_int(raw: str, name: str) -> int:
    """A positive 64-bit integer from a path segment; anything else is a 400."""
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise BadRequest(f"{name} must be a positive integer")
    return int(raw)


async def parse_body(request: Request, kind: type[S], validate: Callable[[S], T], *, code: str, limit: int) -> T:
    """Read, decode (msgspec: exact Decimals, strict types) and validate a JSON body.

    Anything wrong — too large, not JSON, wrong types, a ValueError from ``validate`` — is a 422
    with ``code`` and a one-sentence message (413 for a body over ``limit``).
    """
    raw = await read_body(request, limit)
    try:
        if not raw.strip():
            raise ValueError("the request body is empty; send a JSON object")
        try:
            body = msgspec.json.decode(raw, type=kind)
        except msgspec.DecodeError as exc:
            raise ValueError(f"invalid JSON body: {exc}") from None
        return validate(body)
    except ValueError as exc:
        raise Unprocessable(str(exc), code=code) from None
