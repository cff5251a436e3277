"""A real browser for the tests: Debian's Chromium, headless, driven by Playwright; and a path-prefix proxy.

Playwright's own browser download does not work here (and is not wanted): the system Chromium
(``/usr/bin/chromium``, installed by ``deploy/scripts/bootstrap.sh``) is launched through
``executable_path``, with the flags a closed network needs (no background connections).
``PrefixProxy`` stands in for the Kubernetes API server's pod proxy: it serves the sidecar under
``/api/v1/namespaces/x/pods/y:8080/proxy/`` and refuses every other path, as the API server would.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from devtools.cluster import free_port

CHROMIUM_FLAGS = [
    "--no-sandbox",  # root in a container; the page is our own
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POD_PROXY = "/api/v1/namespaces/x/pods/y:8080/proxy"


def chromium_path() -> str:
    """The system Chromium, or a failure saying how to get it (a missing browser is not a pass)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: run deploy/scripts/bootstrap.sh (Debian package chromium)")
    return path


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``) for as long as the block runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class PrefixProxy:
    """HTTP/1.1 to ``upstream`` for paths under ``prefix`` (stripped), 404 for any other; streams pass through."""

    def __init__(self, upstream_port: int, prefix: str = POD_PROXY) -> None:
        self.upstream_port = upstream_port
        self.prefix = prefix.encode()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{prefix}/"
        self.seen: list[str] = []  # every request target, as the browser sent it
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.split(b" ", 2)
            self.seen.append(target.decode())
            if not target.startswith(self.prefix + b"/"):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            headers = [h for h in rest.split(b"\r\n") if h and not h.lower().startswith(b"connection:")]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            up_writer.write(b"\r\n".join([method + b" " + target[len(self.prefix) :] + b" " + version, *headers]))
            up_writer.write(b"\r\nConnection: close\r\n\r\n")  # one request per connection: no framing to parse

            async def pipe() -> None:
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()

            # Until the answer ends, or the browser hangs up (then the sidecar sees its client go).
            _, pending = await asyncio.wait(
                {asyncio.ensure_future(pipe()), asyncio.ensure_future(reader.read())},
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
            up_writer.close()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> PrefixProxy:
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._thread.start()
        self._server = server.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
