"""HTTP access to one sidecar: every failure becomes a CliError with one clear line and its exit code.

Answers are decoded with the contract's own Structs (``fasterdb.contract``), so an answer that is
not what the sidecar promises is reported as such (UNKNOWN) rather than half-read. Nothing the user
typed into ``--url`` is echoed back beyond scheme, host, port and path: a password or a DSN given
there by mistake never reaches a terminal or a log. ``Reply.failure`` is the one place where an
HTTP answer becomes an exit code (the README's exit-code table).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from .exitcodes import Exit

S = TypeVar("S")
Auth = Literal["none", "optional", "required"]


class CliError(Exception):
    """A failure to report on one stderr line (``details``: more lines under it), with its exit code."""

    def __init__(self, message: str, code: Exit = Exit.UNKNOWN, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = list(details)


class NotSent(CliError):
    """A failure before the request could reach the sidecar (no token, no connection): nothing happened there."""


def check_url(url: str) -> str:
    """The sidecar's base URL, or CliError (UNKNOWN) saying what is wrong without echoing secrets."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise CliError("--url must be the sidecar's address, such as http://127.0.0.1:8080")
    if scheme.lower() in ("postgresql", "postgres"):
        raise CliError(
            "--url got a PostgreSQL DSN; it takes the sidecar's HTTP address, such as http://127.0.0.1:8080 "
            "(the DSN belongs in the sidecar's FASTERDB_PRIMARY_DSN)"
        )
    if scheme.lower() not in ("http", "https"):
        raise CliError("--url must start with http:// or https://")
    try:
        parsed = httpx.URL(url)
        host = parsed.host
    except (httpx.InvalidURL, ValueError, TypeError):
        raise CliError("--url is not a valid URL (check brackets, port and characters)") from None
    if parsed.userinfo:
        raise CliError(
            "--url must not carry credentials (user:password@); give the admin token with --token "
            "or FASTERDB_ADMIN_TOKEN"
        )
    if not host:
        raise CliError("--url has no host")
    return url.rstrip("/")


def shown_url(url: str) -> str:
    """The URL as it may appear in a message: scheme, host, port and path only."""
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(query=None, fragment=None))
    except (httpx.InvalidURL, ValueError, TypeError):
        return "(the given URL)"


# What to do about each refusal of the bearer token, in the CLI's words (not HTTP's).
TOKEN_ADVICE = {
    "unauthorized": "this command needs the sidecar's admin token: set FASTERDB_ADMIN_TOKEN or use --token",
    "invalid_token": "the admin token was refused: it is not the sidecar's FASTERDB_ADMIN_TOKEN "
    "(check --token or FASTERDB_ADMIN_TOKEN)",
    "admin_disabled": "the sidecar's admin endpoints are off: start it with FASTERDB_ADMIN_TOKEN "
    "(or FASTERDB_ADMIN_TOKEN_FILE) set",
}
# Answers that refuse or fail the operation itself (CRITICAL); every other non-success is UNKNOWN.
REFUSED = (404, 409, 422)
UNAVAILABLE = 503


@dataclass
class Reply:
    """A sidecar answer: HTTP status and decoded JSON body."""

    status: int
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        """The contract's error body's ``{"code", "message"}`` ({} when the body is not one)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, dict) else {}

    @property
    def server_message(self) -> str | None:
        """The message of the contract's error body, as the sidecar wrote it (None: not an error body)."""
        message = self.error.get("message")
        return message if isinstance(message, str) else None

    @property
    def error_code(self) -> str | None:
        """The contract's error code, when the body is an error body."""
        code = self.error.get("code")
        return code if isinstance(code, str) else None

    @property
    def error_message(self) -> str:
        """The server's error message from the contract's error body, or a generic line."""
        if self.error:
            return f"{self.server_message or 'request failed'} ({self.error_code or 'error'})"
        if isinstance(self.body, dict) and self.body.get("kind") == "Status":  # the Kubernetes API's own
            return f"Kubernetes API: {self.body.get('message', 'request refused')} (HTTP {self.status})"
        return f"the sidecar answered HTTP {self.status}"

    def failure(self, what: str) -> CliError:
        """This unsuccessful answer as a CliError: a token or configuration problem, a bad request and
        a server fault are UNKNOWN (3); a refused (404, 409, 422) or failed (503) operation CRITICAL (2)."""
        if self.status in (401, 403):
            return CliError(f"{what}: {TOKEN_ADVICE.get(self.error_code or '') or self.error_message}")
        if self.status == UNAVAILABLE:
            return CliError(f"{what} failed: {self.error_message}", Exit.CRITICAL)
        if self.status in REFUSED:
            return CliError(f"{what} refused: {self.error_message}", Exit.CRITICAL)
        return CliError(f"{what}: {self.error_message}")

    def expect(self, what: str, *ok: int) -> dict[str, Any]:
        """The body of a successful answer (200, or one of ``ok``); ``failure`` otherwise."""
        if self.status not in (ok or (200,)):
            raise self.failure(what)
        return self.body if isinstance(self.body, dict) else {"result": self.body}

    def decode(self, kind: type[S]) -> S:
        """The body as the contract's ``kind``; CliError (UNKNOWN) when it is not one."""
        try:
            return msgspec.convert(self.body, type=kind)
        except msgspec.ValidationError as exc:
            raise CliError(f"unexpected answer from the sidecar (HTTP {self.status}): {exc}") from None


class SidecarClient:
    """A small synchronous client for the sidecar's HTTP API; use it as a context manager."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 5.0,
        http: httpx.Client | None = None,
        shown: str | None = None,
    ) -> None:
        self.url = check_url(url) if http is None else url.rstrip("/")
        self.shown = shown or shown_url(self.url)
        self.token = token
        self.timeout = timeout
        # ``http``: a preconfigured client (e.g. TLS and credentials of the Kubernetes API server).
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        auth: Auth = "none",
    ) -> Reply:
        """Send a request; connection problems and non-JSON answers raise CliError (UNKNOWN).

        ``auth``: "required" (an admin endpoint: no token is a configuration error, nothing is sent),
        "optional" (the token is sent when there is one), "none".
        """
        headers = {"accept": "application/json"}
        if auth == "required" and not self.token:
            raise NotSent(TOKEN_ADVICE["unauthorized"])
        if auth != "none" and self.token:
            headers["authorization"] = f"Bearer {self.token}"
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        with self._failures():
            response = self._http.request(method, path, params=clean, json=json_body, headers=headers)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CliError(
                f"the sidecar at {self.shown} sent a non-JSON answer (HTTP {response.status_code}) to {path}"
            ) from None
        return Reply(response.status_code, body)

    def get(self, path: str, **params: Any) -> Reply:
        """GET ``path`` with query ``params`` (no token)."""
        return self.request("GET", path, params=params)

    def events(self, path: str, params: dict[str, Any], read_timeout: float) -> Iterator[str]:
        """The ``data`` of each Server-Sent Event of ``path`` as it arrives."""
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        with self._failures(), self._http.stream("GET", path, params=params, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                raise CliError(f"{path} answered HTTP {response.status_code}")
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield "\n".join(data)
                    data = []

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectTimeout:
            raise NotSent(f"cannot reach the sidecar at {self.shown}: no connection within {self.timeout:g}s") from None
        except httpx.TimeoutException:
            raise CliError(f"the sidecar at {self.shown} did not answer within {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise NotSent(f"cannot reach the sidecar at {self.shown}: {reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"the connection to the sidecar at {self.shown} failed: {reason(exc)}") from None


# What a failure to connect says, in words: (text in the exception, what to tell the user).
FAILURES = (
    ("Connection refused", "connection refused"),
    ("ECONNREFUSED", "connection refused"),
    ("Name or service not known", "host not found"),
    ("nodename nor servname", "host not found"),
    ("timed out", "timed out"),
    # https:// to a plain-HTTP server: its first bytes are not a TLS record.
    ("WRONG_VERSION_NUMBER", "TLS handshake failed: does it speak plain HTTP? (try http://)"),
    ("record layer failure", "TLS handshake failed: does it speak plain HTTP? (try http://)"),
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted"),
    ("Connection reset by peer", "the connection was reset by the server"),
    ("Server disconnected without sending a response", "the server closed the connection without an answer"),
)


def known_failure(text: str) -> str | None:
    """The words for a known connection failure in ``text``, or None."""
    return next((words for needle, words in FAILURES if needle in text), None)


def reason(exc: BaseException) -> str:
    """A connection failure in words: a known one, else the first line of its text (never a traceback)."""
    text = str(exc) or type(exc).__name__
    return known_failure(text) or text.splitlines()[0][:200]
