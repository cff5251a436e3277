"""HTTP conventions the framework does not keep, as one ASGI middleware in front of the app.

FasterAPI 0.2.14 answers an unknown method on a known path with 404 and does not derive HEAD
from GET. Here, from the registered operations: an unknown path is 404, a known path with an
unsupported method is 405 with ``Allow``, OPTIONS is 204 with ``Allow``, and HEAD is answered as
GET with the same status and headers and no body (load balancers health-check with HEAD).

Every answer whose body is sent in one piece gets ``Content-Length``: FasterAPI sends none, and
uvicorn then frames every answer as ``transfer-encoding: chunked`` (an extra write, and a framing an
HTTP/1.0 client cannot read). Only streams (Server-Sent Events) go without it: chunked for HTTP/1.1,
ended by closing the connection for HTTP/1.0 (``http.protocol``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import send_error

Scope = dict[str, Any]


class RouteTable:
    """Path templates (``/jobs/{job_id}``) and the methods each one serves."""

    def __init__(self, routes: Iterable[tuple[str, str]]) -> None:
        self._routes: dict[tuple[str, ...], set[str]] = {}
        for method, path in routes:
            self._routes.setdefault(self._key(path), set()).add(method.upper())

    @staticmethod
    def _key(path: str) -> tuple[str, ...]:
        return tuple("{}" if s.startswith("{") and s.endswith("}") else s for s in path.split("/") if s)

    def allowed(self, path: str) -> set[str] | None:
        """The methods a concrete path allows (GET implies HEAD), or None for an unknown path.

        The most specific templates win, as in any router: /accounts/seed (literal) is not also
        /accounts/{account_id}, so GET there is 405, not "account 'seed'".
        """
        segments = [s for s in path.split("/") if s]
        best, methods = -1, set()
        for key, served in self._routes.items():
            if len(key) == len(segments) and all(k == "{}" or k == s for k, s in zip(key, segments, strict=True)):
                literal = sum(1 for k in key if k != "{}")
                if literal > best:
                    best, methods = literal, set(served)
                elif literal == best:
                    methods |= served
        if best < 0:
            return None
        if "GET" in methods:
            methods.add("HEAD")
        return methods | {"OPTIONS"}


def _allow(methods: set[str]) -> bytes:
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return ", ".join(sorted(methods, key=lambda m: order.index(m) if m in order else len(order))).encode()


class HttpConventions:
    """404/405/OPTIONS/HEAD for the app's routes; everything else passes through unchanged."""

    def __init__(self, app: Any, table: RouteTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        allowed = self.table.allowed(path)
        if allowed is None:
            await send_error(send, 404, "not_found", f"no such endpoint: {method} {path}", [])
            return
        allow = (b"allow", _allow(allowed))
        if method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": [allow]})
            await send({"type": "http.response.body", "body": b""})
            return
        if method not in allowed:
            methods = ", ".join(sorted(allowed - {"OPTIONS", "HEAD"}))
            await send_error(send, 405, "method_not_allowed", f"{path} allows {methods}, not {method}", [allow])
            return
        if method == "HEAD":
            await self._head(scope, receive, send)
            return
        await self.app(scope, receive, _with_length(send))

    async def _head(self, scope: Scope, receive: Any, send: Any) -> None:
        """GET without the body: the same status and headers (Content-Length of the GET body)."""
        started: dict[str, Any] | None = None
        length = 0
        finished = False

        async def send_head(message: dict[str, Any]) -> None:
            nonlocal started, length, finished
            if finished:
                return
            if message["type"] == "http.response.start":
                started = message
                return
            if message["type"] == "http.response.body" and started is not None:
                length += len(message.get("body", b""))
                if message.get("more_body"):
                    # A stream (SSE): answer with its headers at once, never its body.
                    await send(started)
                    await send({"type": "http.response.body", "body": b""})
                    finished = True
                    return
                headers = [(k, v) for k, v in started.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(length).encode()))
                await send({**started, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                finished = True

        await self.app({**scope, "method": "GET", "fasterdb.head": True}, receive, send_head)


_FRAMING = (b"content-length", b"transfer-encoding")


def _unheld(name: bytes, value: bytes) -> bool:
    """Whether a start with this header goes out at once: framed already, or a stream (its head now)."""
    name = name.lower()
    return name in _FRAMING or (name == b"content-type" and value.startswith(b"text/event-stream"))


def _with_length(send: Any) -> Any:
    """``send`` adding Content-Length to an answer whose first body part is its whole body."""
    held: dict[str, Any] | None = None

    async def send_with_length(message: dict[str, Any]) -> None:
        nonlocal held
        if message["type"] == "http.response.start":
            if any(_unheld(name, value) for name, value in message.get("headers", ())):
                await send(message)
            else:
                held = message  # until the first body part says whether it is the whole body
            return
        if held is not None and message["type"] == "http.response.body":
            start, held = held, None
            if not message.get("more_body", False):
                length = str(len(message.get("body", b""))).encode()
                start = {**start, "headers": [*start.get("headers", ()), (b"content-length", length)]}
            await send(start)
        await send(message)

    return send_with_length
