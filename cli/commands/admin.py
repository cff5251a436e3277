"""Shared pieces of the admin commands (bearer token): reading a refusal as CRITICAL."""

from __future__ import annotations

from typing import Any

from ..client import CliError, Reply
from ..exitcodes import Exit

# What to do about each refusal of the bearer token, in the CLI's words (not HTTP's).
TOKEN_ADVICE = {
    "unauthorized": "this command needs the sidecar's admin token: set FASTERDB_ADMIN_TOKEN or use --token",
    "invalid_token": "the admin token was refused: it is not the sidecar's FASTERDB_ADMIN_TOKEN "
    "(check --token or FASTERDB_ADMIN_TOKEN)",
    "admin_disabled": "the sidecar's admin endpoints are off: start it with FASTERDB_ADMIN_TOKEN "
    "(or FASTERDB_ADMIN_TOKEN_FILE) set",
}


def require_ok(reply: Reply, what: str, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    """The body of a successful answer; a refusal is CRITICAL with the server's reason."""
    if reply.status in ok:
        return reply.body if isinstance(reply.body, dict) else {"result": reply.body}
    if reply.status in (401, 403):
        advice = TOKEN_ADVICE.get(reply.error_code or "")
        raise CliError(f"{what}: {advice or reply.error_message}", Exit.CRITICAL)
    if 400 <= reply.status < 600:
        raise CliError(f"{what} refused: {reply.error_message}", Exit.CRITICAL)
    raise CliError(f"{what}: unexpected answer HTTP {reply.status}")
