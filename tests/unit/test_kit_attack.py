"""Hostile input to the kit without a database: a client's read-after header, a sidecar that answers oddly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from FasterAPI import Faster, Response

from fasterdb import Database
from fasterdb.settings import KitSettings
from fasterdb.sidecar import HttpClient, SidecarError

DSN = "postgresql://app:secret@127.0.0.1:1/app"


def test_a_read_after_token_with_non_ascii_bytes_is_ignored_not_a_500() -> None:
    # Any client can send any bytes in a header; the kit decodes it as latin-1 and must ignore
    # what does not verify. hmac.compare_digest refuses non-ASCII str (TypeError): a 500 on every route.
    db = Database(KitSettings(primary_dsn=DSN, sidecar_url=None, read_after_key=b"k" * 32))
    app = Faster(openapi_url=None, docs_url=None, redoc_url=None)
    db.install(app)

    @app.get("/ok")
    async def ok() -> Response:
        return Response(b"{}", media_type="application/json")

    async def get(token: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/ok", headers={"fasterdb-read-after": token})

    for token in (b"v1.1.1.\xe9", b"v1.1.1.\xff\xfe", b"\xe9"):
        answer = asyncio.run(get(token))
        assert answer.status_code == 200, (token, answer.status_code, answer.text)
        assert "fasterdb-read-after" not in answer.headers  # ignored: nothing to hand back


class OneAnswer:
    """A loopback server that answers the first request of each connection with ``answer``."""

    def __init__(self, answer: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.answer = answer
        self.handled = asyncio.Event()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        async with asyncio.timeout(5):
            await self.handled.wait()  # the answer finished (its handler ends on its own)
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self.answer(writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.handled.set()


def test_a_sidecar_answer_with_an_oversized_header_line_is_a_sidecar_error() -> None:
    # Something else on the sidecar's port (or a broken proxy) answers with a 70 KB header line:
    # the link must see "cannot ask the sidecar" (SidecarError), not an unexpected exception that
    # it logs with a traceback at every interval.
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    async def scenario() -> str:
        async with OneAnswer(answer) as port:
            client = HttpClient(f"http://127.0.0.1:{port}", 2.0)
            try:
                await client.request("GET", "/health/replicas")
            except SidecarError:
                return "SidecarError"
            except Exception as exc:  # noqa: BLE001 - what escapes is the finding
                return type(exc).__name__
            finally:
                await client.close()
            return "answered"

    assert asyncio.run(scenario()) == "SidecarError"


def test_a_sidecar_answer_delimited_by_closing_is_read_whole() -> None:
    # HTTP/1.1 without Content-Length or chunking: the body ends when the server closes. Sent in
    # two segments, it must arrive whole, not cut after the first.
    body = b'{"replicas": [], "age_ms": 0, "padding": "' + b"x" * 1000 + b'"}'

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + body[:10])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body[10:])
        await writer.drain()

    async def scenario() -> bytes:
        async with OneAnswer(answer) as port:
            client = HttpClient(f"http://127.0.0.1:{port}", 2.0)
            try:
                _, data = await client.request("GET", "/health/replicas")
                return data
            finally:
                await client.close()

    assert asyncio.run(scenario()) == body
