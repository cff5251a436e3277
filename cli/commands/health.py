"""``fasterdb-admin health``: the sidecar's /health/db (0 ok, 1/2 over a latency range, 2 down, 3 unknown)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import DbHealthBody

from ..check import Verdict, run_check
from ..client import SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, parse_range, perfdata
from ..options import target
from ..output import human_time, make_table
from ..thresholds import parsed

SERVICE = "DATABASE"
WarningRange = Annotated[
    str | None,
    typer.Option(
        "--warning",
        "-w",
        metavar="RANGE",
        help="WARNING when the primary's check time (seconds) is outside this Nagios range, e.g. 0.5.",
    ),
]
CriticalRange = Annotated[
    str | None,
    typer.Option(
        "--critical", "-c", metavar="RANGE", help="CRITICAL when the primary's check time (seconds) is outside it."
    ),
]


def range_option(value: str | None, option: str) -> Range | None:
    """A Nagios range, or a usage error (exit 3) naming the option."""
    return parsed(value, parse_range, option)


@dataclass(frozen=True)
class HealthCheck(Verdict):
    """The sidecar's /health/db answer and the verdict on it."""

    code: Exit
    body: DbHealthBody
    warning: Range | None = None
    critical: Range | None = None

    def table(self) -> Group:
        """One row per pool."""
        body = self.body
        rows = []
        for role, pools in (("primary", [body.primary]), ("replica", body.replicas or [])):
            for pool in pools:
                state = Text("ok", style="green") if pool.ok else Text("DOWN", style="bold red")
                rows.append([pool.name, role, state, pool.latency_ms, pool.error])
        headline = Text(f"database: {body.status}", style="green" if body.status == "ok" else "bold red")
        table = make_table(None, ["pool", "role", "state", "latency ms", "error"], rows)
        return Group(headline, table, Text(f"checked at {human_time(body.checked_at)}", style="dim"))

    def document(self) -> Any:
        """The sidecar's /health/db body."""
        return self.body

    def summary(self) -> str:
        """``primary ok (0.8 ms); replica-1 ok (1.2 ms)``."""
        parts = []
        for pool in self.pools():
            took = f" ({pool.latency_ms:.1f} ms)" if pool.latency_ms is not None else ""
            parts.append(f"{pool.name} ok{took}" if pool.ok else f"{pool.name} {pool.error or 'unavailable'}")
        return "; ".join(parts)

    def perfdata(self, prefix: str = "") -> list[str]:
        """Each pool's check time in seconds; the primary's with the ranges."""
        return [
            perfdata(
                f"{prefix}{pool.name}_latency",
                pool.latency_ms / 1000 if pool.latency_ms is not None else None,
                "s",
                *((self.warning, self.critical) if pool is self.body.primary else (None, None)),
            )
            for pool in self.pools()
        ]

    def pools(self) -> list[Any]:
        """The primary, then the replicas."""
        return [self.body.primary, *(self.body.replicas or [])]


def fetch_health(client: SidecarClient, warning: Range | None = None, critical: Range | None = None) -> HealthCheck:
    """Ask /health/db; CRITICAL when the primary is unusable (or its check time crosses ``critical``)."""
    reply = client.get("/health/db", replicas="true")
    if reply.status not in (200, 503):
        raise reply.failure("/health/db")
    return verdict(reply.decode(DbHealthBody), warning, critical)


def verdict(body: DbHealthBody, warning: Range | None = None, critical: Range | None = None) -> HealthCheck:
    """CRITICAL unless the sidecar says ok; else the primary's check time judged by the ranges."""
    latency = body.primary.latency_ms / 1000 if body.primary.latency_ms is not None else None
    code = Exit.OK if body.status == "ok" else Exit.CRITICAL
    return HealthCheck(worst([code, judge(latency, warning, critical)]), body, warning, critical)


def health(ctx: typer.Context, warning: WarningRange = None, critical: CriticalRange = None) -> Exit:
    """Is the database usable? /health/db: 0 ok, 2 unavailable, 3 sidecar unreachable.

    \b
    Example:
      fasterdb-admin health -o nagios -w 0.2 -c 0.8
    """
    warn, crit = range_option(warning, "--warning"), range_option(critical, "--critical")
    return run_check(target(ctx), SERVICE, lambda client: fetch_health(client, warn, crit))
