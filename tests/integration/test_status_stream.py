"""/status/stream ends with its client: no work left behind, a bound on open streams, a prompt end at SIGTERM.

Clients are raw sockets that read the first event and then vanish without a word (as a closed
laptop lid does), so nothing but the connection's end tells the sidecar. The in-process sidecar
lets the test read the shared producer's own state.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from fasterdb_sidecar.app import MAX_STATUS_STREAMS
from tests.harness import InProcessSidecar, SidecarProcess, wait_for


@pytest.fixture(scope="module")
def inproc(sidecar_env: dict[str, str]) -> Iterator[InProcessSidecar]:
    with InProcessSidecar(sidecar_env) as sidecar:
        yield sidecar


def open_stream(port: int) -> socket.socket:
    """A client that has received the stream's first event."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /status/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    received = b""
    while b"event: status" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return sock


def test_clients_that_vanish_leave_no_stream_and_no_producer(inproc: InProcessSidecar) -> None:
    feed = inproc.sidecar.status_feed
    clients = [open_stream(inproc.port) for _ in range(3)]
    wait_for(lambda: feed.streams == 3 and feed.running, what="three streams, one producer")
    for sock in clients:
        sock.close()
    wait_for(lambda: feed.streams == 0 and not feed.running, timeout=5, what="streams and producer gone")


def test_open_streams_are_bounded(inproc: InProcessSidecar) -> None:
    feed = inproc.sidecar.status_feed
    clients = [open_stream(inproc.port) for _ in range(MAX_STATUS_STREAMS)]
    try:
        wait_for(lambda: feed.streams == MAX_STATUS_STREAMS, what="every stream open")
        refused = httpx.get(inproc.url + "/status/stream", timeout=10)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "too_many_streams"
    finally:
        for sock in clients:
            sock.close()
    wait_for(lambda: feed.streams == 0 and not feed.running, timeout=5, what="all closed")
    open_stream(inproc.port).close()  # room again


def test_sigterm_ends_an_open_stream_at_once(sidecar_env: dict[str, str]) -> None:
    with SidecarProcess(sidecar_env) as sidecar:
        sock = open_stream(sidecar.port)
        assert sidecar.proc is not None
        sidecar.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        sock.settimeout(5)
        while sock.recv(65536):
            pass  # events until the stream ends
        assert time.monotonic() - started < 2.0
        assert sidecar.proc.wait(10) == 0
        sock.close()
