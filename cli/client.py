"""HTTP access to one sidecar: every failure becomes a CliError with one clear line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from cli.exitcodes import Exit


class CliError(Exception):
    """A failure to report on one stderr line, with the exit code to leave with."""

    def __init__(self, message: str, code: Exit = Exit.UNKNOWN) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


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


class SidecarClient:
    """A small synchronous client for the sidecar's HTTP API."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 5.0, http: httpx.Client | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        if not self.url.startswith(("http://", "https://")):
            raise CliError(f"--url must start with http:// or https:// (got {url!r})")
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
            raise CliError(f"the sidecar at {self.url} did not answer within {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise CliError(f"cannot reach the sidecar at {self.url}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to the sidecar at {self.url} failed: {_reason(exc)}") from None
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CliError(
                f"the sidecar at {self.url} sent a non-JSON answer (HTTP {response.status_code}) to {path}"
            ) from None
        return Reply(response.status_code, body)

    def get(self, path: str, **params: Any) -> Reply:
        """GET ``path`` with query ``params``."""
        return self.request("GET", path, params=params)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "ECONNREFUSED" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host not found"
    return text.splitlines()[0][:200]


def expect_fields(reply: Reply, *fields: str) -> dict[str, Any]:
    """The body as a dict holding ``fields``, or CliError (UNKNOWN: not a sidecar answer)."""
    body = reply.body
    if not isinstance(body, dict) or any(f not in body for f in fields):
        raise CliError(f"unexpected answer from the sidecar (HTTP {reply.status}): missing {', '.join(fields)}")
    return body
