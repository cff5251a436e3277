"""Shared pieces of the admin commands (bearer token): reading a refusal as CRITICAL."""

from __future__ import annotations

from typing import Any

from cli.client import CliError, Reply
from cli.exitcodes import Exit


def require_ok(reply: Reply, what: str, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    """The body of a successful answer; a refusal is CRITICAL with the server's reason."""
    if reply.status in ok:
        return reply.body if isinstance(reply.body, dict) else {"result": reply.body}
    if reply.status in (401, 403):
        raise CliError(f"{what}: {reply.error_message}", Exit.CRITICAL)
    if 400 <= reply.status < 600:
        raise CliError(f"{what} refused: {reply.error_message}", Exit.CRITICAL)
    raise CliError(f"{what}: unexpected answer HTTP {reply.status}")
