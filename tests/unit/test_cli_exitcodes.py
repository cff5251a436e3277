"""One exit code per kind of failure, for every command (the README's exit-code table)."""

from __future__ import annotations

import pytest

from fasterdb_admin.client import Reply
from fasterdb_admin.exitcodes import Exit, worst


def test_worst_orders_critical_over_unknown_over_warning() -> None:
    assert worst([]) == Exit.OK
    assert worst([Exit.OK, Exit.WARNING]) == Exit.WARNING
    assert worst([Exit.WARNING, Exit.UNKNOWN]) == Exit.UNKNOWN
    assert worst([Exit.UNKNOWN, Exit.CRITICAL, Exit.OK]) == Exit.CRITICAL


def error(code: str, message: str = "why") -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "body", "code", "words"),
    [
        (401, error("unauthorized"), Exit.UNKNOWN, "set FASTERDB_ADMIN_TOKEN or use --token"),
        (401, error("invalid_token"), Exit.UNKNOWN, "the admin token was refused"),
        (403, error("admin_disabled"), Exit.UNKNOWN, "the sidecar's admin endpoints are off"),
        (403, {"kind": "Status", "message": "pods is forbidden"}, Exit.UNKNOWN, "Kubernetes API: pods is forbidden"),
        (400, error("invalid_parameter", "replica names no replica"), Exit.UNKNOWN, "names no replica"),
        (500, error("internal_error"), Exit.UNKNOWN, "internal_error"),
        (413, error("body_too_large"), Exit.UNKNOWN, "body_too_large"),
        (404, error("account_not_found"), Exit.CRITICAL, "transfer refused: why (account_not_found)"),
        (409, error("insufficient_funds"), Exit.CRITICAL, "refused"),
        (422, error("invalid_transfer"), Exit.CRITICAL, "refused"),
        (503, error("database_unavailable"), Exit.CRITICAL, "transfer failed: why (database_unavailable)"),
    ],
)
def test_every_unsuccessful_answer_has_one_exit_code(status: int, body: object, code: Exit, words: str) -> None:
    failure = Reply(status, body).failure("transfer")
    assert failure.code == code and words in failure.message
