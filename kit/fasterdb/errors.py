"""One error hierarchy and one JSON error body: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """An error with an HTTP status, a snake_case code and a one-sentence message safe to show."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}  # extra response headers (WWW-Authenticate on a 401)
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]

    def body(self) -> dict[str, Any]:
        """The JSON error body of the contract."""
        return error_body(self.code, self.message)


class BadRequest(ServiceError):
    status = 400
    code = "invalid_parameter"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        # RFC 6750: a 401 names the scheme; a token that was presented but is wrong says so.
        challenge = 'Bearer realm="fasterdb-sidecar"'
        if code == "invalid_token":
            challenge += ', error="invalid_token"'
        self.headers["www-authenticate"] = challenge


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Unprocessable(ServiceError):
    status = 422
    code = "invalid_request"


class DatabaseUnavailable(ServiceError):
    """The database could not be reached or answered in time; safe to retry."""

    status = 503
    code = "database_unavailable"

    def __init__(self, category: str, *, pool: str = "primary", code: str | None = None) -> None:
        super().__init__(f"the {pool} database is unavailable: {category}", code=code)
        self.category = category
        self.pool = pool


class OutcomeUnknown(ServiceError):
    """COMMIT was sent but its answer never arrived: the work may or may not have been applied."""

    status = 503
    code = "outcome_unknown"

    def __init__(self, pool: str = "primary") -> None:
        super().__init__(
            f"the connection to the {pool} database was lost during COMMIT: the outcome is unknown; "
            "check whether the change was applied before retrying it"
        )
        self.pool = pool


class DatabaseError(ServiceError):
    """The database refused an operation for a reason that is not the caller's input."""

    status = 500
    code = "database_error"


def error_body(code: str, message: str) -> dict[str, Any]:
    """Build the contract's error body."""
    return {"error": {"code": code, "message": message}}
