"""The HTTP/1.1 connection: uvicorn's httptools protocol with a bounded request head and body.

httptools (through its Python wrapper) and uvicorn build a header value and the URL with ``+=``
on bytes, once per network read: a 64 MB header costs tens of gigabytes of copying (quadratic:
50 MB 4.8 s, 200 MB 85 s) and as much memory, on the event loop every probe shares. Here a head
is counted as it arrives and, past ``max_head`` bytes without its end, refused: 431 with the
contract's JSON body and ``connection: close``, nothing more read from the connection.

A body is read by the application as it arrives (``http.api.read_body`` counts it, chunked or
not, and refuses it with 413 at its operation's limit; uvicorn stops reading while 64 KiB wait
unread). When an answer is complete while the request's body is still arriving (a 413, or a
route that reads no body), the connection is closed instead of reading the rest to throw it
away (uvicorn would read all of it, however large).

Also here: an HTTP/1.0 client never gets a chunked body (it cannot read one). Answers of known
length carry Content-Length (``http.api.Sized``); a stream answered to HTTP/1.0 is delimited by
closing the connection, as HTTP/1.0 does.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from fasterdb.errors import error_body

log = logging.getLogger("fasterdb.http")

LINGER_SECONDS = 1.0  # after a refusal: the answer's bytes reach the client before the socket closes
HEAD_TOO_LARGE = "request_head_too_large"


def refusal(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error answer (the contract's JSON body) that closes the connection."""
    body = msgspec.json.encode(error_body(code, message))
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def bounded_http(max_head: int) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP protocol class refusing request heads (request line and headers) over ``max_head`` bytes."""
    too_large = refusal(
        431,
        "Request Header Fields Too Large",
        HEAD_TOO_LARGE,
        f"the request line and headers are larger than {max_head} bytes",
    )

    class BoundedHttp(HttpToolsProtocol):
        """One connection; see the module's description.

        Kept lean (it runs for every request): a head is the bytes read while no request body is
        arriving, counted from the first read after the previous head ended (a new ``cycle``).
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0
            self._head_after: RequestResponseCycle | None = None  # the request before the head counted
            self._refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            cycle = self.cycle
            if cycle is not None and cycle.more_body:  # a body is arriving: uvicorn's flow control bounds it
                self._feed(data, cycle)
                return
            if cycle is not self._head_after:  # a head ended since the last read: a new one starts
                self._head_after, self._head_bytes = cycle, 0
            room = max_head - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                self._feed(data, cycle)
                return
            # Feed only what fits the limit; if the head has not ended within it, refuse.
            self._feed(data[:room], cycle)
            if self._refused or self.transport.is_closing():
                return
            if self.cycle is cycle:
                log.info("refused a request head over %d bytes (431) from %s", max_head, self._peer())
                self._refuse(too_large)
                return
            self.data_received(data[room:])  # the head ended within the limit: the rest is body (or the next)

        def _feed(self, data: bytes, cycle: RequestResponseCycle | None) -> None:
            super().data_received(data)
            new = self.cycle
            if new is not cycle and new is not None:  # before its task first runs (on the next turn of the loop)
                new.transport = OneWrite(new.transport, new)  # type: ignore[assignment]
                if new.scope["http_version"] == "1.0":
                    _close_delimited(new)

        def on_response_complete(self) -> None:
            cycle = self.cycle
            if cycle is not None and cycle.more_body and not self.pipeline and not self.transport.is_closing():
                # Answered while the body is still arriving: close rather than read it to discard it.
                self.server_state.total_requests += 1
                self._unset_keepalive_if_required()
                self._refuse(b"")
                return
            super().on_response_complete()

        def _refuse(self, answer: bytes) -> None:
            """Send ``answer``, read nothing more, close once it had time to arrive."""
            self._refused = True
            self.flow.pause_reading()
            if answer:
                self.transport.write(answer)
            if self.transport.can_write_eof():
                self.transport.write_eof()  # the client reads the answer, then the end
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def _peer(self) -> str:
            return f"{self.client[0]}:{self.client[1]}" if self.client else "?"

    return BoundedHttp


class OneWrite:
    """One answer's transport: the head of an answer with Content-Length leaves with its body.

    uvicorn writes the status line and headers, then the body: two writes, two system calls and,
    with TCP_NODELAY, two packets the client waits for one after the other — for a 300-byte
    health document the head's write was a quarter of the sidecar's CPU time. Here that head
    waits (in memory, while the handler's ``send`` of the body follows it on the same turn of the
    loop) and goes out in the body's write. Anything else is written as it comes: streams (no
    Content-Length: their head must not wait for the first event), empty bodies, HEAD answers,
    ``100 Continue``. A head still waiting when the connection closes goes out first.
    """

    __slots__ = ("_transport", "_cycle", "_head", "_started")

    def __init__(self, transport: Any, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._started = False  # the answer's head was written (or is waiting)

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
            return
        cycle = self._cycle
        if not self._started and cycle.response_started:  # this is the head
            self._started = True
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length > 0
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def flush(self) -> None:
        """Write a head still waiting for its body."""
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _close_delimited(cycle: RequestResponseCycle) -> None:
    """Make ``cycle`` send a body of unknown length to an HTTP/1.0 client unframed, ended by closing.

    uvicorn frames any answer without Content-Length as chunked, whatever the request's version.
    An HTTP/1.0 request's connection closes after the answer anyway (uvicorn keeps none alive), so
    the body needs no framing: send it as is and close. Answers with Content-Length are unchanged.
    """
    send = cycle.send
    unframed = False

    async def send_unframed(message: Any) -> None:
        nonlocal unframed
        if message["type"] == "http.response.start" and not cycle.response_started:
            headers = message.get("headers", [])
            framed = any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)
            if not framed and cycle.scope["method"] != "HEAD" and message["status"] not in (204, 304):
                unframed = True
                cycle.chunked_encoding = False  # uvicorn: "not chunked": each body part written as is
        elif unframed and message["type"] == "http.response.body":
            # uvicorn counts the body down from a Content-Length: let each part be the rest of it.
            more = message.get("more_body", False)
            cycle.expected_content_length = len(message.get("body", b"")) + (1 if more else 0)
        await send(message)

    cycle.send = send_unframed  # type: ignore[method-assign]
