"""The pod's sidecar, seen from the application: its view of the replicas, and the pool reports.

One background task asks the sidecar (``FASTERDB_SIDECAR_URL``, loopback) once per interval for
``/health/replicas`` and ``/health/db`` — one request each, shared by every read of the process —
and posts the process's pool statistics to ``/pools/report``. Nothing on a request path waits for
the sidecar: a sidecar that is absent, slow or old only makes the view age, and an aged view sends
reads to the primary (``routing``). The HTTP client is a small HTTP/1.1 one over asyncio streams
(the kit depends on FasterAPI, asyncpg and msgspec only), with a deadline on every exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import msgspec

from fasterdb.contract import DbHealthBody, ReplicasBody
from fasterdb.lsn import parse_lsn
from fasterdb.tasks import cancel_and_wait

log = logging.getLogger("fasterdb.kit")
MAX_BODY = 4 * 1024 * 1024
# What a broken, odd or slow answer raises (LimitOverrunError: a line longer than the stream's limit).
ANSWER_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError)


class SidecarError(Exception):
    """The sidecar could not be asked (not running, not answering in time, not HTTP)."""


class HttpClient:
    """One keep-alive HTTP/1.1 connection to ``http://host:port``, every exchange within ``timeout``."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock = asyncio.Lock()

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body) of one exchange; SidecarError when it cannot be had in time."""
        async with self._lock:
            for attempt in (0, 1):
                reused = self._streams is not None
                try:
                    async with asyncio.timeout(self.timeout):
                        return await self._exchange(method, path, body)
                except ANSWER_ERRORS as exc:
                    await self.close()
                    if not (reused and attempt == 0 and not isinstance(exc, TimeoutError)):
                        raise SidecarError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
            raise SidecarError("unreachable")  # the loop returns or raises

    async def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: application/json\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        await writer.drain()
        status_line = await reader.readuntil(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError("not an HTTP answer")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise ValueError("answer too large")
            data = await reader.readexactly(length)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._chunked(reader)
        else:  # the body ends when the server closes
            data = b""
            while chunk := await reader.read(64 * 1024):
                data += chunk
                if len(data) > MAX_BODY:
                    raise ValueError("answer too large")
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(chunks)
            if sum(map(len, chunks)) + size > MAX_BODY:
                raise ValueError("answer too large")
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def close(self) -> None:
        """Close the connection (the next exchange opens a new one)."""
        streams, self._streams = self._streams, None
        if streams is not None:
            streams[1].close()
            with contextlib.suppress(Exception):
                await streams[1].wait_closed()


@dataclass(frozen=True)
class ReplicaView:
    """One replica as the sidecar measured it."""

    name: str
    state: str
    lag_bytes: int | None
    lag_seconds: float | None
    replay_lsn: int | None  # what it had replayed when measured (it only moves forward)


@dataclass(frozen=True)
class View:
    """The sidecar's view of the replicas and the primary, and how old it is."""

    replicas: dict[str, ReplicaView]
    primary_error: str | None  # None: the primary answers and takes writes
    fetched_at: float  # time.monotonic() when it arrived
    measured_age: float = 0.0  # seconds the measurement was old when it arrived

    def age(self, now: float) -> float:
        """Seconds since the sidecar measured this."""
        return self.measured_age + max(0.0, now - self.fetched_at)


@dataclass
class SidecarLink:
    """The background task that keeps a ``View`` current and reports this process's pools."""

    url: str
    interval: float
    on_view: Callable[[View], Awaitable[None]]
    report: Callable[[], bytes] | None = None
    timeout: float = 1.0
    failures: int = 0
    reports_refused: int = 0
    _client: HttpClient | None = field(default=None, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start asking (returns at once)."""
        self._client = HttpClient(self.url, min(self.timeout, self.interval * 2))
        self._task = asyncio.create_task(self._run(), name="fasterdb-sidecar-link")

    async def stop(self) -> None:
        """Stop asking and close the connection."""
        await cancel_and_wait(self._task)
        if self._client is not None:
            await self._client.close()

    async def _run(self) -> None:
        assert self._client is not None
        while True:
            started = time.monotonic()
            try:
                view = await self.fetch(self._client)
                if self.failures:
                    log.info("the sidecar answers again (%s)", self.url)
                self.failures = 0
                await self.on_view(view)
                if self.report is not None:
                    await self._report(self._client)
            except SidecarError as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 120 == 0:
                    log.warning("cannot ask the sidecar at %s (%s); reads go to the primary", self.url, exc)
            except Exception:  # never let the link die: the view just ages
                log.exception("sidecar link failed; continuing")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def fetch(self, client: HttpClient) -> View:
        """Ask the sidecar once for the replicas' lag and the primary's health."""
        status, body = await client.request("GET", "/health/replicas")
        if status not in (200, 503):
            raise SidecarError(f"/health/replicas answered {status}")
        try:
            replicas = msgspec.json.decode(body, type=ReplicasBody)
        except msgspec.MsgspecError as exc:
            raise SidecarError(f"/health/replicas: not the contract's body ({exc})") from None
        primary_error: str | None = None
        db_status, db_body = await client.request("GET", "/health/db")
        if db_status in (200, 503):
            with contextlib.suppress(msgspec.MsgspecError):
                primary_error = msgspec.json.decode(db_body, type=DbHealthBody).primary.error
        return View(
            replicas={
                r.name: ReplicaView(r.name, r.state, r.lag_bytes, r.lag_seconds, parse_lsn(r.replay_lsn))
                for r in replicas.replicas
            },
            primary_error=primary_error,
            fetched_at=time.monotonic(),
            measured_age=replicas.age_ms / 1000,
        )

    async def _report(self, client: HttpClient) -> None:
        assert self.report is not None
        status, _ = await client.request("POST", "/pools/report", self.report())
        if status >= 400:
            self.reports_refused += 1
            if self.reports_refused == 1:
                log.info(
                    "the sidecar does not take pool reports (HTTP %d): the application's pools stay unlisted", status
                )
