"""The status page document: one self-contained HTML page, its style and script inline.

The style and the script are files of this package (``page.css``, ``page.js``), inlined and allowed
by their SHA-256 in the Content-Security-Policy: nothing else may run or load, nothing comes from
another origin. Every URL is relative (``status/stream``, ``docs``), so the page works at ``/``,
behind ``kubectl port-forward`` and under the API server's pod-proxy prefix alike. Without
JavaScript it is a server-rendered snapshot that reloads itself.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources

import msgspec

from .render import clock, esc, render, title
from .view import StatusView

STREAM_URL = "status/stream"  # relative to the page: also right under a path prefix
NO_SCRIPT_RELOAD_SECONDS = 15

SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{css}</style>
<noscript><meta http-equiv="refresh" content="{reload}"></noscript>
</head>
<body>
<header>
<h1>fasterdb-sidecar <small>{version}</small></h1>
<p id="live" class="live" data-state="snapshot">Snapshot of {time}<noscript> · JavaScript is off: \
this page reloads every {reload} s</noscript></p>
<nav><a href="docs">API docs</a> · <a href="openapi.json">OpenAPI</a> · <a href="metrics">Metrics</a></nav>
</header>
<main id="status" data-stream="{stream}">{main}</main>
<footer>Shows only what the sidecar's open endpoints show (/health/db, /health/replicas, /pools, /db/activity \
without a token, /db/wraparound, /metrics); no token is needed or used. Lag history: the last 5 minutes, \
kept in this sidecar's memory.</footer>
<script>{js}</script>
</body>
</html>
"""


@functools.cache
def _asset(name: str) -> str:
    """A file of this package (read once)."""
    return (importlib.resources.files(__package__ or __name__) / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def content_security_policy() -> str:
    """Only this page's own style and script, and connections back to this origin (the stream)."""
    return (
        f"default-src 'none'; script-src {_sha256(_asset('page.js'))}; style-src {_sha256(_asset('page.css'))}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def document(view: StatusView, version: str) -> str:
    """The whole page with ``view`` rendered in it."""
    return SHELL.format(
        title=esc(title(view)),
        css=_asset("page.css"),
        js=_asset("page.js"),
        version=esc(version),
        time=esc(clock(view.at)),
        stream=STREAM_URL,
        main=render(view),
        reload=NO_SCRIPT_RELOAD_SECONDS,
    )


def update(view: StatusView) -> str:
    """One streamed update: the rendered live part, the title and the time, as one line of JSON."""
    return msgspec.json.encode({"html": render(view), "title": title(view), "time": clock(view.at)}).decode()
