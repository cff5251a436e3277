"""``fasterdb-admin pool-stats``: every pool, like PgBouncer's SHOW POOLS; ``--watch`` redraws live."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated

import httpx
import msgspec
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from fasterdb.contract import PoolsBody

from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..kube import run_across_pods
from ..options import Target, sidecar_options
from ..output import emit, make_table

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


def judge(document: PoolsBody) -> Exit:
    """CRITICAL when the primary pool is not ready, WARNING when a replica pool is not, else OK."""
    return worst([Exit.CRITICAL if p.role == "primary" else Exit.WARNING for p in document.pools if not p.ready])


def pools_table(document: PoolsBody) -> Group:
    """The /pools document as a table, one row per pool."""
    rows = []
    for p in document.pools:
        wait = p.acquire_wait_ms
        ready = Text("yes", style="green") if p.ready else Text(f"NO: {p.error or '?'}", style="bold red")
        rows.append(
            [
                p.name,
                p.role,
                ready,
                f"{p.size} ({p.min_size}-{p.max_size})",
                p.in_use,
                p.idle,
                Text(str(p.waiting), style="yellow") if p.waiting else p.waiting,
                f"{wait.p50:.1f}/{wait.p99:.1f}/{wait.max:.1f}",
                p.acquired_total,
                p.acquire_timeouts_total,
            ]
        )
    footer = Text(f"collected at {document.collected_at}; waits over the last 60 s", style="dim")
    return Group(make_table(None, COLUMNS, rows), footer)


def fetch(client: SidecarClient) -> PoolsBody:
    """GET /pools."""
    reply = client.get("/pools")
    if reply.status != 200:
        raise CliError(f"/pools: {reply.error_message}")
    return reply.decode(PoolsBody)


def fetch_and_judge(client: SidecarClient) -> tuple[Exit, PoolsBody]:
    """GET /pools and its exit code."""
    document = fetch(client)
    return judge(document), document


def stream(client: SidecarClient, interval: float) -> Iterator[PoolsBody]:
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
                        document = msgspec.json.decode("\n".join(data), type=PoolsBody)
                    except msgspec.DecodeError:
                        raise CliError("/pools/stream sent an event that is not a /pools document") from None
                    data = []
                    yield document
    except httpx.TimeoutException:
        raise CliError(f"the sidecar at {client.shown} stopped sending statistics") from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot stream from the sidecar at {client.shown}: {type(exc).__name__}") from None


def watch_stream(client: SidecarClient, output: str, interval: float, frames: int | None = None) -> Exit:
    """Redraw the table on every event until Ctrl-C (exit 0), or after ``frames`` events."""
    shown = 0
    try:
        if output == "json":  # one document per line (NDJSON), for piping
            for document in stream(client, interval):
                sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
                sys.stdout.flush()
                shown += 1
                if frames is not None and shown >= frames:
                    break
            return Exit.OK
        if not sys.stdout.isatty():
            # Not a terminal (a pipe, a file, a log): one table per event, as they come.
            console = Console(width=160)
            for document in stream(client, interval):
                console.print(pools_table(document))
                sys.stdout.flush()
                shown += 1
                if frames is not None and shown >= frames:
                    break
            return Exit.OK
        console = Console()
        with Live(console=console, auto_refresh=False, transient=False) as live:
            for document in stream(client, interval):
                live.update(pools_table(document), refresh=True)
                shown += 1
                if frames is not None and shown >= frames:
                    break
    except KeyboardInterrupt:
        pass
    return Exit.OK


@sidecar_options(kube=True)
def pool_stats(
    target: Target,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw live from /pools/stream until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=60, metavar="SECONDS", help="Seconds between redraws with --watch.")
    ] = 1.0,
    frames: Annotated[int | None, typer.Option(min=1, hidden=True, help="Stop --watch after N redraws.")] = None,
) -> Exit:
    """Pool statistics (PgBouncer SHOW POOLS style): 0 all ready, 1 a replica pool not, 2 the primary not.

    --watch redraws in a terminal; piped, it prints one table (or with -o json one JSON document
    per line) per event.

    \b
    Examples:
      fasterdb-admin pool-stats --watch --interval 0.5
      fasterdb-admin pool-stats --watch -o json | jq .pools[0].waiting
    """
    if target.kube is not None:
        if watch:
            raise typer.BadParameter("--watch cannot be combined with --kube", param_hint="--watch")
        return run_across_pods(target.kube, fetch_and_judge, target.output, pools_table)
    client = target.client()
    try:
        if watch:
            return watch_stream(client, target.output, interval, frames)
        code, document = fetch_and_judge(client)
    finally:
        client.close()
    emit(document, target.output, pools_table)
    return code
