"""``fasterdb-admin pool-stats``: every pool, like PgBouncer's SHOW POOLS; ``--watch`` redraws live."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from fasterdb.contract import PoolBody, PoolsBody

from ..check import Verdict, run_check
from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import perfdata
from ..options import Target, target
from ..output import StdoutConsole, console, human_time, make_table, write

SERVICE = "POOLS"
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


def label(pool: PoolBody) -> str:
    """The sidecar's pools by name; an application's (reported by the kit) under its name and instance."""
    if pool.source == "sidecar":
        return pool.name
    process = pool.instance.rpartition(":")[2] if isinstance(pool.instance, str) else ""
    return f"{pool.app or 'app'}@{process}/{pool.name}" if process else f"{pool.app or 'app'}/{pool.name}"


def judge(document: PoolsBody) -> Exit:
    """CRITICAL when the primary pool is not ready, WARNING when a replica pool is not, else OK."""
    return worst([Exit.CRITICAL if p.role == "primary" else Exit.WARNING for p in document.pools if not p.ready])


@dataclass(frozen=True)
class PoolsCheck(Verdict):
    """The /pools document and its verdict."""

    code: Exit
    body: PoolsBody

    def table(self) -> Group:
        """The /pools document as a table, one row per pool."""
        rows = []
        for p in self.body.pools:
            wait = p.acquire_wait_ms
            ready = Text("yes", style="green") if p.ready else Text(f"NO: {p.error or '?'}", style="bold red")
            rows.append(
                [
                    label(p),
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
        footer = Text(f"collected at {human_time(self.body.collected_at)}; waits over the last 60 s", style="dim")
        return Group(make_table(None, COLUMNS, rows), footer)

    def document(self) -> Any:
        """The sidecar's /pools document."""
        return self.body

    def summary(self) -> str:
        """``primary ready 3/10 in use, 0 waiting; replica-1 not ready (connection refused)``."""
        return "; ".join(
            f"{label(p)} ready {p.in_use}/{p.max_size} in use, {p.waiting} waiting"
            if p.ready
            else f"{label(p)} not ready ({p.error or '?'})"
            for p in self.body.pools
        )

    def perfdata(self, prefix: str = "") -> list[str]:
        """Connections in use and tasks waiting, per pool."""
        perf = []
        for p in self.body.pools:
            perf.append(perfdata(f"{prefix}{label(p)}_in_use", p.in_use, "", None, None, 0, p.max_size))
            perf.append(perfdata(f"{prefix}{label(p)}_waiting", p.waiting))
        return perf


def fetch(client: SidecarClient) -> PoolsCheck:
    """GET /pools, judged."""
    reply = client.get("/pools")
    if reply.status != 200:
        raise reply.failure("/pools")
    return verdict(reply.decode(PoolsBody))


def verdict(document: PoolsBody) -> PoolsCheck:
    """The /pools document judged."""
    return PoolsCheck(judge(document), document)


def stream(client: SidecarClient, interval: float) -> Iterator[PoolsBody]:
    """The documents of /pools/stream as they arrive (Server-Sent Events)."""
    for data in client.events("/pools/stream", {"interval": interval}, interval + client.timeout):
        try:
            yield msgspec.json.decode(data, type=PoolsBody)
        except msgspec.DecodeError:
            raise CliError("/pools/stream sent an event that is not a /pools document") from None


def watch_stream(client: SidecarClient, output: str, interval: float, frames: int | None = None) -> Exit:
    """Redraw the table on every event until Ctrl-C (exit 0), or after ``frames`` events.

    Not a terminal (a pipe, a file, a log): one table, or with -o json one JSON line, per event.
    """
    documents = islice(stream(client, interval), frames)
    try:
        if output == "json":  # one document per line (NDJSON), for piping
            for document in documents:
                write(msgspec.json.encode(document).decode() + "\n")
        elif not sys.stdout.isatty():
            for document in documents:
                console().print(verdict(document).table())
                sys.stdout.flush()
        else:
            with Live(console=StdoutConsole(), auto_refresh=False, transient=False) as live:
                for document in documents:
                    live.update(verdict(document).table(), refresh=True)
    except KeyboardInterrupt:
        pass
    return Exit.OK


def pool_stats(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw live from /pools/stream until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=60, metavar="SECONDS", help="Seconds between redraws with --watch.")
    ] = 1.0,
    frames: Annotated[int | None, typer.Option(min=1, hidden=True, help="Stop --watch after N redraws.")] = None,
) -> Exit:
    """Pool statistics (PgBouncer SHOW POOLS style): 0 all ready, 1 a replica pool not, 2 the primary not.

    --watch redraws in a terminal; piped, it prints one table (or with -o json one JSON document
    per line) per event. With --kube, --watch follows one ready pod (named on stderr).

    \b
    Examples:
      fasterdb-admin pool-stats --watch --interval 0.5
      fasterdb-admin pool-stats --watch -o json | jq .pools[0].waiting
    """
    chosen: Target = target(ctx)
    if not watch:
        return run_check(chosen, SERVICE, fetch)
    if chosen.output == "nagios":
        raise typer.BadParameter("--watch prints tables or JSON lines, not Nagios", param_hint="--output")
    with chosen.client() as client:
        return watch_stream(client, chosen.output, interval, frames)
