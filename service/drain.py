"""The drain, in one place: serving → SIGTERM → draining → stop accepting → cut-off → exit 0.

1. SIGTERM (or SIGINT): ``Lifecycle.drain()``; ``/health/db`` answers 503 ``draining`` at once.
   Requests are still served for ``FASTERDB_DRAIN_MIN_SECONDS`` (while endpoints drop the pod; a
   second signal ends this early).
2. The server stops accepting; in-flight requests get ``FASTERDB_SHUTDOWN_TIMEOUT`` seconds.
3. Requests still running are cancelled: a transaction's backend is terminated (it is rolled back)
   and ``InFlight`` answers the contract's JSON 503 ``shutting_down`` instead of the server's
   ``text/plain`` 500.
4. ``wind_down``: the cut-off requests get ``CUT_OFF_SECONDS`` to finish answering, the background
   tasks stop, the pools close within ``CUT_OFF_SECONDS`` (what does not close is terminated).
5. The process exits 0, within ``exit_bound()`` of the signal.

``STOP_SECONDS`` (step 4) is the one figure the chart adds to the drain and shutdown times for the
pod's terminationGracePeriodSeconds; the chart tests check that it matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .http.errors import send_error
from .lifecycle import Lifecycle

log = logging.getLogger("fasterdb.main")

CUT_OFF_SECONDS = 1.0  # step 4: the cut-off requests' answers, then the pools' close, each at most this
STOP_SECONDS = 2 * CUT_OFF_SECONDS  # all of step 4
CUT_OFF = (
    "the sidecar is shutting down and stopped this request at the end of its drain time; "
    "it did not complete, so retrying it (with the same idempotency key) is safe"
)
Scope = dict[str, Any]


def exit_bound(drain_min_seconds: float, shutdown_timeout: float) -> float:
    """Seconds from SIGTERM to the exit at most: steps 1, 2 and 4 (the rest is instantaneous)."""
    return drain_min_seconds + shutdown_timeout + STOP_SECONDS


async def wind_down(
    lifecycle: Lifecycle, stop_background: Callable[[], Awaitable[None]], close: Callable[[float], Awaitable[None]]
) -> None:
    """Step 4, after the server stopped: answers, background tasks, pools; then ``stopped``."""
    lifecycle.drain()  # already draining after SIGTERM; not when stopped some other way
    await lifecycle.wait_idle(CUT_OFF_SECONDS)
    await stop_background()
    await close(CUT_OFF_SECONDS)
    lifecycle.stopped()


class InFlight:
    """ASGI middleware: counts the requests in flight for ``lifecycle``; answers cut-off ones (step 3)."""

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


def _dual_stack(host: str, port: int) -> list[socket.socket] | None:
    """Listening sockets for host "::" (IPv6 and IPv4; IPv4 alone without IPv6); None: uvicorn binds."""
    if host != "::":
        return None
    # asyncio would make "::" IPv6-only, and the application beside the sidecar calls 127.0.0.1.
    if socket.has_dualstack_ipv6():
        return [socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)]
    log.warning("no IPv6 on this host: listening on IPv4 only")
    return [socket.create_server(("0.0.0.0", port))]


def serve(
    app: Any,
    lifecycle: Lifecycle,
    host: str,
    port: int,
    drain_min_seconds: float,
    shutdown_timeout: float,
    max_request_head_bytes: int,
) -> int:
    """Run ``app`` under uvicorn until a signal, then drain (steps 1-5); 0 after a graceful stop."""
    import uvicorn

    from .http.protocol import bounded_http

    def announce(sig: int) -> None:
        log.info(
            "%s: draining; readiness answers 503 from now on, requests are served for %g s more, "
            "then in-flight ones get %g s",
            signal.Signals(sig).name,
            drain_min_seconds,
            shutdown_timeout,
        )

    class DrainingServer(uvicorn.Server):
        """uvicorn with step 1: readiness 503 at the first signal, serving on for the minimum drain."""

        exit_at: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            # Runs in a signal handler: set state only; logging happens on the event loop.
            if lifecycle.drain():
                self.exit_at = time.monotonic() + drain_min_seconds
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().call_soon_threadsafe(announce, sig)
                return
            super().handle_exit(sig, frame)  # a second signal: stop accepting now (SIGINT twice: force)

        async def on_tick(self, counter: int) -> bool:
            if self.exit_at is not None and time.monotonic() >= self.exit_at:
                self.should_exit = True
            return bool(await super().on_tick(counter))

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # uvicorn's httptools protocol with the request head and unread bodies bounded (http.protocol).
        http=bounded_http(max_request_head_bytes),
        server_header=False,
        # The peer's address is the client's (the report endpoint takes loopback only): no
        # X-Forwarded-For rewriting it, and no middleware for it on every request.
        proxy_headers=False,
        # Step 2, fractions included (uvicorn uses it as an asyncio timeout).
        timeout_graceful_shutdown=shutdown_timeout,  # type: ignore[arg-type]
    )
    server = DrainingServer(config)
    try:
        sockets = _dual_stack(host, port)
    except OSError as exc:  # as uvicorn reports its own bind errors
        log.error("cannot listen on [%s]:%d: %s", host, port, exc.strerror or exc)
        return 1
    if sockets is not None:
        log.info("listening on %s port %d", "::" if sockets[0].family == socket.AF_INET6 else "0.0.0.0", port)
    # uvicorn handles SIGTERM/SIGINT (stop accepting, finish in-flight requests within the
    # timeout, run shutdown), then re-raises the signal to the handlers it found. Make those
    # no-ops so the process exits 0 after a graceful stop (and a caller can clean up).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=sockets)
    return 0 if server.started else 1
