"""Error rendering: every error leaves as ``{"error": {"code", "message"}}``, none as a traceback."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from FasterAPI import HTTPException, Request, RequestValidationError, Response

from fasterdb.errors import ServiceError, error_body

from .api import NO_STORE, Sized

log = logging.getLogger("fasterdb.http")

STATUS_CODES = {
    400: "invalid_parameter",
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


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The contract's error body as a response."""
    return Sized(
        msgspec.json.encode(error_body(code, message)),
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
        media_type="application/json",
    )


def _cause(exc: BaseException) -> str:
    """The error's cause chain as ``Type: text`` (the logging filter masks credentials in it)."""
    parts: list[str] = []
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen and len(parts) < 3:
        seen.add(id(cause))
        parts.append(f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return " <- ".join(parts) or "no underlying exception"


async def service_error_handler(request: Request, exc: ServiceError) -> Response:
    """Render one of our errors (with its headers, e.g. WWW-Authenticate on a 401); a 5xx is logged
    with its cause (the log filter masks credentials), so no server-side failure goes unrecorded."""
    if exc.status >= 500:
        log.warning(
            "%s %s answered %d %s: %s (cause: %s)",
            request.method,
            request.path,
            exc.status,
            exc.code,
            exc.message,
            _cause(exc),
            extra={"status": exc.status, "code": exc.code},
        )
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Log an unexpected exception with its traceback (the framework logs nothing) and answer 500."""
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(500, "internal_error", "internal error; see the sidecar's log")


async def send_error(
    send: Any, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """The contract's error body sent on a raw ASGI ``send`` (for middlewares in front of the app)."""
    body = msgspec.json.encode(error_body(code, message))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in NO_STORE.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def _raw(status: int, body: dict[str, Any]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    encoded = msgspec.json.encode(body)
    return status, encoded, [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(encoded))]


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
    return _raw(exc.status_code, error_body(STATUS_CODES.get(exc.status_code, "error"), message))
