"""``fasterdb-admin pool-stats``: every pool, like PgBouncer's SHOW POOLS; ``--watch`` redraws live."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from cli.client import CliError, SidecarClient, expect_fields
from cli.exitcodes import Exit, worst
from cli.output import emit, make_table

COLUMNS = [
    "pool",
    "role",
    "ready",
    "size (min-max)",
    "in use",
    "idle",
    "waiting",
    "wait p50/p99/max ms",
    "acquired",
    "timeouts",
]


def judge(document: dict[str, Any]) -> Exit:
    """CRITICAL when the primary pool is not ready, WARNING when a replica pool is not, else OK."""
    codes = []
    for pool in document["pools"]:
        if not pool.get("ready"):
            codes.append(Exit.CRITICAL if pool.get("role") == "primary" else Exit.WARNING)
    return worst(codes)


def pools_table(document: dict[str, Any]) -> Group:
    """The /pools document as a table, one row per pool."""
    rows = []
    for p in document["pools"]:
        wait = p.get("acquire_wait_ms") or {}
        waits = "/".join(f"{wait.get(k, 0):.1f}" for k in ("p50", "p99", "max"))
        ready = "yes" if p.get("ready") else f"NO: {p.get('error') or '?'}"
        rows.append(
            [
                p["name"],
                p["role"],
                ready,
                f"{p['size']} ({p['min_size']}-{p['max_size']})",
                p["in_use"],
                p["idle"],
                p["waiting"],
                waits,
                p["acquired_total"],
                p["acquire_timeouts_total"],
            ]
        )
    footer = Text(f"collected at {document.get('collected_at', '?')}; waits over the last 60 s", style="dim")
    return Group(make_table(None, COLUMNS, rows), footer)


def fetch(client: SidecarClient) -> dict[str, Any]:
    """GET /pools."""
    reply = client.get("/pools")
    if reply.status != 200:
        raise CliError(f"/pools: {reply.error_message}")
    return expect_fields(reply, "collected_at", "pools")


def fetch_and_judge(client: SidecarClient) -> tuple[Exit, dict[str, Any]]:
    """GET /pools and its exit code."""
    document = fetch(client)
    return judge(document), document


def run(client: SidecarClient, output: str) -> Exit:
    """pool-stats once: print, and return the exit code."""
    document = fetch(client)
    emit(document, output, pools_table)
    return judge(document)


def stream(client: SidecarClient, interval: float) -> Iterator[dict[str, Any]]:
    """The documents of /pools/stream as they arrive (Server-Sent Events)."""
    timeout = httpx.Timeout(client.timeout, read=interval + client.timeout)
    try:
        with httpx.stream(
            "GET", f"{client.url}/pools/stream", params={"interval": interval}, timeout=timeout
        ) as response:
            if response.status_code != 200:
                raise CliError(f"/pools/stream answered HTTP {response.status_code}")
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    try:
                        document = json.loads("\n".join(data))
                    except json.JSONDecodeError:
                        raise CliError("/pools/stream sent an event that is not JSON") from None
                    data = []
                    yield document
    except httpx.TimeoutException:
        raise CliError(f"the sidecar at {client.url} stopped sending statistics") from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot stream from the sidecar at {client.url}: {exc}") from None


def watch(client: SidecarClient, output: str, interval: float, frames: int | None = None) -> Exit:
    """Redraw the table on every event until Ctrl-C (exit 0), or after ``frames`` events."""
    shown = 0
    try:
        if output == "json":  # one document per line (NDJSON), for piping
            for document in stream(client, interval):
                sys.stdout.write(json.dumps(document) + "\n")
                sys.stdout.flush()
                shown += 1
                if frames is not None and shown >= frames:
                    break
            return Exit.OK
        console = Console(width=None if sys.stdout.isatty() else 160)
        with Live(console=console, auto_refresh=False, transient=False) as live:
            for document in stream(client, interval):
                live.update(pools_table(document), refresh=True)
                shown += 1
                if frames is not None and shown >= frames:
                    break
    except KeyboardInterrupt:
        pass
    return Exit.OK
