"""``fasterdb-admin health``: the sidecar's /health/db (0 ok, 1/2 over a latency range, 2 down, 3 unknown)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import DbHealthBody

from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..kube import run_across_pods
from ..nagios import Range, across_pods, judge, parse_range, perfdata, status_line
from ..options import Target, sidecar_options
from ..output import CheckOutput, emit, make_table
from ..thresholds import parsed

SERVICE = "DATABASE"


def range_option(value: str | None) -> Range | None:
    """A Nagios range, or a usage error (exit 3)."""
    return parsed(value, parse_range)


@dataclass(frozen=True)
class HealthCheck:
    """The sidecar's answer and the verdict on it."""

    code: Exit
    body: DbHealthBody
    warning: Range | None = None
    critical: Range | None = None


def fetch_health(
    client: SidecarClient, warning: Range | None = None, critical: Range | None = None
) -> tuple[Exit, HealthCheck]:
    """Ask /health/db; CRITICAL when the primary is unusable (or its check crosses ``critical``)."""
    reply = client.get("/health/db", replicas="true")
    if reply.status not in (200, 503):
        raise CliError(f"/health/db: {reply.error_message}")
    body = reply.decode(DbHealthBody)
    code = Exit.OK if reply.status == 200 and body.status == "ok" else Exit.CRITICAL
    latency = body.primary.latency_ms / 1000 if body.primary.latency_ms is not None else None
    code = worst([code, judge(latency, warning, critical)])
    return code, HealthCheck(code, body, warning, critical)


def health_table(check: HealthCheck) -> Group:
    """The health answer as a table, one row per pool."""
    body = check.body
    rows = []
    for role, pools in (("primary", [body.primary]), ("replica", body.replicas or [])):
        for pool in pools:
            state = Text("ok", style="green") if pool.ok else Text("DOWN", style="bold red")
            rows.append([pool.name, role, state, pool.latency_ms, pool.error])
    headline = Text(f"database: {body.status}", style="green" if body.status == "ok" else "bold red")
    table = make_table(None, ["pool", "role", "state", "latency ms", "error"], rows)
    footer = Text(f"checked at {body.checked_at} ({body.age_ms} ms ago)", style="dim")
    return Group(headline, table, footer)


def nagios_parts(check: HealthCheck, prefix: str = "") -> tuple[str, list[str]]:
    """The summary and perfdata of one sidecar's answer."""
    body = check.body
    parts, perf = [], []
    for pool in [body.primary, *(body.replicas or [])]:
        if pool.ok:
            took = f" ({pool.latency_ms:.1f} ms)" if pool.latency_ms is not None else ""
            parts.append(f"{pool.name} ok{took}")
        else:
            parts.append(f"{pool.name} {pool.error or 'unavailable'}")
        seconds = pool.latency_ms / 1000 if pool.latency_ms is not None else None
        ranges = (check.warning, check.critical) if pool is body.primary else (None, None)
        perf.append(perfdata(f"{prefix}{pool.name}_latency", seconds, "s", *ranges))
    return "; ".join(parts), perf


def nagios_line(check: HealthCheck) -> str:
    """``DATABASE <STATE> - primary ok (0.8 ms); replica-1 ok | 'primary_latency'=0.0008s;;;0;``."""
    summary, perf = nagios_parts(check)
    return status_line(SERVICE, check.code, summary, perf)


def nagios_across_pods(results: list[dict[str, Any]]) -> str:
    """One Nagios line for several pods; perfdata labels carry the pod's name."""
    return across_pods(SERVICE, results, HealthCheck, nagios_parts)


@sidecar_options(output=CheckOutput, kube=True)
def health(
    target: Target,
    warning: Annotated[
        str | None,
        typer.Option(
            "--warning",
            "-w",
            metavar="RANGE",
            help="WARNING when the primary's check time (seconds) is outside this Nagios range, e.g. 0.5.",
        ),
    ] = None,
    critical: Annotated[
        str | None,
        typer.Option(
            "--critical", "-c", metavar="RANGE", help="CRITICAL when the primary's check time (seconds) is outside it."
        ),
    ] = None,
) -> Exit:
    """Is the database usable? /health/db: 0 ok, 2 unavailable, 3 sidecar unreachable.

    \b
    Example:
      fasterdb-admin health -o nagios -w 0.2 -c 0.8
    """
    warn, crit = range_option(warning), range_option(critical)

    def one(client: SidecarClient) -> tuple[Exit, HealthCheck]:
        return fetch_health(client, warn, crit)

    if target.kube is not None:
        return run_across_pods(target.kube, one, target.output, health_table, nagios_across_pods, as_json=as_json)
    client = target.client()
    try:
        code, check = one(client)
    finally:
        client.close()
    emit(check, target.output, health_table, nagios_line, as_json=as_json)
    return code


def as_json(check: object) -> object:
    """The sidecar's /health/db body (what ``-o json`` prints)."""
    return check.body if isinstance(check, HealthCheck) else check
