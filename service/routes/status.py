"""Router: / (the status page, HTML) and /status/stream (its live updates, Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from FasterAPI import Response

from .. import __version__
from ..http.api import Api, Call, Operation, Reply, Sized
from ..http.sse import EventStream, Streams, event
from ..status.feed import Feed
from ..status.view import StatusSource, StatusView

EVENT = "status"
RETRY_MS = 3000
HTML = {"type": "string"}
PAGE_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

PAGE = Operation(
    "GET",
    "/",
    "status_page",
    "The status page: primary, replicas with lag history, pools, the database's headline, jobs (HTML, live)",
    "status",
    (Reply(200, "the status page (HTML; a server-rendered snapshot that updates itself)", None, "text/html", HTML),),
    description=(
        "For people: open it in a browser (also through kubectl port-forward or the API server's pod "
        "proxy; every URL in it is relative). It shows only what the open endpoints show and needs no token."
    ),
)
STREAM = Operation(
    "GET",
    "/status/stream",
    "status_stream",
    "Server-Sent Events: the status page's live part, about once a second",
    "status",
    (
        Reply(
            200,
            f"text/event-stream: events named '{EVENT}' with an increasing 'id'; 'data' is JSON "
            '{"html", "title", "time"}: the page\'s <main> content, rendered by the server; '
            f"the first event carries 'retry: {RETRY_MS}'. Ends when the sidecar drains.",
            None,
            media_type="text/event-stream",
            schema={"type": "string"},
        ),
        Reply(503, "too many (status) event streams are open on this sidecar (too_many_streams); retry later"),
    ),
)


def register(api: Api, source: StatusSource, feed: Feed[StatusView], streams: Streams) -> None:
    """The page and its stream; every open stream shares ``feed``'s one producer."""

    @api.route(PAGE)
    async def page(call: Call) -> Response:
        """The page with a fresh snapshot in it (the same caches as the open endpoints)."""
        # Imported on first use: the page's renderer (HTML, html.entities) is ~0.4 MB of resident
        # memory that a sidecar nobody opens the page of never needs (issue 24).
        from ..status.page import content_security_policy, document

        headers = {**PAGE_HEADERS, "content-security-policy": content_security_policy()}
        return Sized(document(await source.collect(), __version__), headers=headers, media_type="text/html")

    @api.route(STREAM)
    async def stream(call: Call) -> EventStream:
        """Updates until the client leaves or the sidecar drains."""
        feed.admit()

        from ..status.page import update

        async def events() -> AsyncIterator[bytes]:
            if call.head:
                return
            number = 0
            async for view in feed.values():
                number += 1
                yield event(EVENT, update(view), number, RETRY_MS if number == 1 else None)

        return EventStream(call.request, events(), streams, "status")
