"""Requests in flight, and the JSON 503 of a request cut off at the drain limit.

At the end of the drain time the server cancels the requests still running. Without this
middleware the client gets the server's ``text/plain`` 500, although the cancelled work was rolled
back (a transaction's backend is terminated on cancel) — the contract's answer for that is a JSON
503 that says a retry is safe.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .http.errors import send_error
from .lifecycle import Lifecycle

Scope = dict[str, Any]
CUT_OFF = (
    "the sidecar is shutting down and stopped this request at the end of its drain time; "
    "it was rolled back, so retrying it (with the same idempotency key) is safe"
)


class InFlight:
    """Counts the requests in flight for ``lifecycle``; answers the cut-off ones with JSON 503."""

    def __init__(self, app: Any, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        self.lifecycle.request_started(task)
        try:
            await self.app(scope, receive, tracked_send)
        except asyncio.CancelledError:
            if not self.lifecycle.draining:
                raise  # not our shutdown: let the cancellation run its course
            # The server cancelled us at its drain limit: answer instead of its text/plain 500.
            task.uncancel()
            if not started:
                await send_error(send, 503, "shutting_down", CUT_OFF, [(b"connection", b"close")])
        finally:
            self.lifecycle.request_finished(task)
