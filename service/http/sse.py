"""Server-Sent Events that end with their client.

FasterAPI 0.2.14's ``EventSourceResponse`` never reads ``receive``, and uvicorn's ``send`` returns
quietly once the client is gone, so a stream whose client vanished would run (and query) forever.
``EventStream`` races the events against ``http.disconnect`` and stops at whichever comes first:
the client leaving, a failed send, or the events ending (the sidecar draining).

Every stream holds a slot of ``Streams`` while it runs: the number open, by stream, is the metric
``fasterdb_streams_open``, and past ``FASTERDB_MAX_STREAMS`` open at once a new one is refused
with a JSON 503 ``too_many_streams`` before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from FasterAPI import Request

from .errors import send_error

log = logging.getLogger("fasterdb.sse")
HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # proxies (nginx, the API server's) must pass each event at once
]


def event(name: str, data: str, event_id: int, retry_ms: int | None = None) -> bytes:
    """One event in the text/event-stream format (``data`` must be one line, e.g. compact JSON)."""
    lines = [f"id: {event_id}", f"event: {name}", f"data: {data}"]
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    return ("\n".join(lines) + "\n\n").encode()


class Streams:
    """The open event streams by name (``names``: every stream the sidecar serves), at most ``limit`` in all."""

    def __init__(self, limit: int, names: tuple[str, ...]) -> None:
        self.limit = limit
        self.open = dict.fromkeys(names, 0)

    @property
    def total(self) -> int:
        """Streams open now, all names together."""
        return sum(self.open.values())

    def enter(self, name: str) -> bool:
        """Take a slot for a stream named ``name``; False (and no slot) when ``limit`` are open."""
        if self.total >= self.limit:
            return False
        self.open[name] = self.open.get(name, 0) + 1
        return True

    def leave(self, name: str) -> None:
        """Give back a slot taken by ``enter``."""
        self.open[name] -= 1


class EventStream:
    """A text/event-stream answer: ``events`` until they end, the client disconnects or a send fails."""

    def __init__(self, request: Request, events: AsyncIterator[bytes], streams: Streams, name: str) -> None:
        self.request = request
        self.events = events
        self.streams = streams
        self.name = name

    async def _client_gone(self) -> None:
        receive = self.request._receive  # FasterAPI keeps the ASGI receive only there
        while (await receive())["type"] != "http.disconnect":
            pass  # the (empty) request body of a GET

    async def _pump(self, send: Any) -> None:
        async for chunk in self.events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def to_asgi(self, send: Any) -> None:
        """Called by the framework with the ASGI ``send``."""
        if not self.streams.enter(self.name):
            await self._close_events()
            message = f"{self.streams.limit} event streams are open (FASTERDB_MAX_STREAMS); retry later"
            await send_error(send, 503, "too_many_streams", message, [(b"retry-after", b"5")])
            return
        try:
            await self._stream(send)
        finally:
            self.streams.leave(self.name)

    async def _close_events(self) -> None:
        aclose = getattr(self.events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    async def _stream(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(HEADERS)})
        pump = asyncio.ensure_future(self._pump(send))
        gone = asyncio.ensure_future(self._client_gone())
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, gone):
                task.cancel()
            results = await asyncio.gather(pump, gone, return_exceptions=True)
            await self._close_events()
        failure = results[0]
        if isinstance(failure, OSError):
            log.debug("event stream ended: the client's connection failed (%s)", type(failure).__name__)
        elif isinstance(failure, Exception):
            log.warning("event stream ended by an error", exc_info=failure)
