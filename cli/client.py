"""HTTP access to one sidecar: every failure becomes a CliError with one clear line.

Answers are decoded with the contract's own Structs (``fasterdb.contract``), so an answer that is not
what the sidecar promises is reported as such (UNKNOWN) rather than half-read. Nothing the user
typed into ``--url`` is echoed back beyond scheme, host, port and path: a password or a DSN given
there by mistake never reaches a terminal or a log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from .exitcodes import Exit

S = TypeVar("S")


class CliError(Exception):
    """A failure to report on one stderr line, with the exit code to leave with."""

    def __init__(self, message: str, code: Exit = Exit.UNKNOWN) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


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


@dataclass
class Reply:
    """A sidecar answer: HTTP status and decoded JSON body."""

    status: int
    body: Any

    @property
    def error_message(self) -> str:
        """The server's error message from the contract's error body, or a generic line."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            err = self.body["error"]
            return f"{err.get('message', 'request failed')} ({err.get('code', 'error')})"
        if isinstance(self.body, dict) and self.body.get("kind") == "Status":  # the Kubernetes API's own
            return f"Kubernetes API: {self.body.get('message', 'request refused')} (HTTP {self.status})"
        return f"the sidecar answered HTTP {self.status}"

    @property
    def error_code(self) -> str | None:
        """The contract's error code, when the body is an error body."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return code if isinstance(code, str) else None
        return None

    def decode(self, kind: type[S]) -> S:
        """The body as the contract's ``kind``; CliError (UNKNOWN) when it is not one."""
        try:
            return msgspec.convert(self.body, type=kind)
        except msgspec.ValidationError as exc:
            raise CliError(f"unexpected answer from the sidecar (HTTP {self.status}): {exc}") from None


class SidecarClient:
    """A small synchronous client for the sidecar's HTTP API."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 5.0, http: httpx.Client | None = None
    ) -> None:
        self.url = check_url(url) if http is None else url.rstrip("/")
        self.shown = shown_url(self.url)
        self.token = token
        self.timeout = timeout
        # ``http``: a preconfigured client (e.g. TLS and credentials of the Kubernetes API server).
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        admin: bool = False,
    ) -> Reply:
        """Send a request; connection problems and non-JSON answers raise CliError (UNKNOWN)."""
        headers = {"accept": "application/json"}
        if admin and self.token:
            headers["authorization"] = f"Bearer {self.token}"
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=clean, json=json_body, headers=headers)
        except httpx.TimeoutException:
            raise CliError(f"the sidecar at {self.shown} did not answer within {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise CliError(f"cannot reach the sidecar at {self.shown}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to the sidecar at {self.shown} failed: {_reason(exc)}") from None
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CliError(
                f"the sidecar at {self.shown} sent a non-JSON answer (HTTP {response.status_code}) to {path}"
            ) from None
        return Reply(response.status_code, body)

    def get(self, path: str, **params: Any) -> Reply:
        """GET ``path`` with query ``params``."""
        return self.request("GET", path, params=params)


# What a failure to connect says, in words: (text in the exception, what to tell the user).
FAILURES = (
    ("Connection refused", "connection refused"),
    ("ECONNREFUSED", "connection refused"),
    ("Name or service not known", "host not found"),
    ("nodename nor servname", "host not found"),
)


def known_failure(text: str, extra: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The words for a known connection failure in ``text`` (FAILURES, then ``extra``), or None."""
    return next((words for needle, words in (*FAILURES, *extra) if needle in text), None)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return known_failure(text) or text.splitlines()[0][:200]
