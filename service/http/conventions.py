"""HTTP conventions the framework does not keep, as one ASGI middleware in front of the app.

FasterAPI 0.2.14 answers an unknown method on a known path with 404 and does not derive HEAD
from GET. Here, from the registered operations: an unknown path is 404, a known path with an
unsupported method is 405 with ``Allow``, OPTIONS is 204 with ``Allow``, and HEAD is answered as
GET with the same status and headers and no body (load balancers health-check with HEAD).

(Every answer carries Content-Length: ``http.api.Sized``; this middleware's own answers too.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import send_error

Scope = dict[str, Any]
KNOWN_PATHS = 1024  # concrete paths whose methods are remembered (the rest are matched each time)


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
        # Per concrete path: its methods and Allow header (matching every template per request cost
        # a tenth of a cached probe). Paths come from clients, so the memo is bounded.
        self._known: dict[str, tuple[set[str] | None, bytes]] = {}

    def _allowed(self, path: str) -> tuple[set[str] | None, bytes]:
        known = self._known.get(path)
        if known is None:
            methods = self.table.allowed(path)
            known = (methods, _allow(methods) if methods is not None else b"")
            if len(self._known) < KNOWN_PATHS:
                self._known[path] = known
        return known

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        allowed, allow_value = self._allowed(path)
        if allowed is None:
            await send_error(send, 404, "not_found", f"no such endpoint: {method} {path}", [])
            return
        allow = (b"allow", allow_value)
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
        await self.app(scope, receive, send)

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
