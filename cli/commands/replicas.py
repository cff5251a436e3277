"""``fasterdb-admin check-replicas``: replica lag with warning/critical thresholds, Nagios style."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import ReplicaBody, ReplicasBody
from fasterdb.sizes import format_size

from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..kube import run_across_pods
from ..nagios import Range, across_pods, judge, perfdata, status_line
from ..options import Target, sidecar_options
from ..output import CheckOutput, emit, make_table, state_style
from ..thresholds import size
from .health import range_option

SERVICE = "REPLICAS"


@dataclass(frozen=True)
class Limits:
    """Thresholds: byte sizes and seconds as ranges; the plain numbers also go to the sidecar."""

    warn_bytes: Range | None = None
    crit_bytes: Range | None = None
    warn_seconds: Range | None = None
    crit_seconds: Range | None = None
    crit_bytes_number: int | None = None  # --crit-lag-bytes, sent as max_lag_bytes
    crit_seconds_number: float | None = None  # --crit-lag-seconds, sent as max_lag_seconds


@dataclass(frozen=True)
class ReplicasCheck:
    """The sidecar's answer, each replica's verdict and the overall one."""

    body: ReplicasBody
    checks: list[Exit]
    code: Exit
    limits: Limits

    def crit_bytes(self) -> Range:
        """The critical byte range in force (the sidecar's FASTERDB_MAX_LAG_BYTES by default)."""
        return self.limits.crit_bytes or Range.above(self.body.max_lag_bytes)

    def crit_seconds(self) -> Range:
        """The critical seconds range in force (the sidecar's FASTERDB_MAX_LAG_SECONDS by default)."""
        return self.limits.crit_seconds or Range.above(self.body.max_lag_seconds)


def judge_replica(replica: ReplicaBody, limits: Limits, body: ReplicasBody) -> Exit:
    """CRITICAL when it cannot serve or crosses a critical range; WARNING past a warning range."""
    if replica.error is not None or replica.lag_bytes is None or replica.lag_seconds is None:
        return Exit.CRITICAL  # down, disconnected, promoted (split brain), or its lag is unknown
    crit_bytes = limits.crit_bytes or Range.above(body.max_lag_bytes)
    crit_seconds = limits.crit_seconds or Range.above(body.max_lag_seconds)
    return worst(
        [
            judge(replica.lag_bytes, limits.warn_bytes, crit_bytes),
            judge(replica.lag_seconds, limits.warn_seconds, crit_seconds),
        ]
    )


def fetch(client: SidecarClient, limits: Limits, replica: str | None = None) -> tuple[Exit, ReplicasCheck]:
    """Ask /health/replicas and judge every replica; UNKNOWN when none is configured."""
    reply = client.get(
        "/health/replicas",
        max_lag_bytes=limits.crit_bytes_number,
        max_lag_seconds=limits.crit_seconds_number,
        replica=replica,
    )
    if reply.status not in (200, 503):
        raise CliError(f"/health/replicas: {reply.error_message}")
    body = reply.decode(ReplicasBody)
    checks = [judge_replica(r, limits, body) for r in body.replicas]
    if not checks:
        raise CliError("no replicas are configured on this sidecar (FASTERDB_REPLICA_DSNS)")
    code = worst(checks)
    return code, ReplicasCheck(body, checks, code, limits)


def replicas_table(check: ReplicasCheck) -> Group:
    """One row per replica."""
    rows = []
    for r, code in zip(check.body.replicas, check.checks, strict=True):
        rows.append(
            [
                r.name,
                Text(code.name, style=state_style(code.name)),
                Text(r.state, style=state_style(r.state)),
                format_size(r.lag_bytes),
                format_size(r.receive_lag_bytes),
                "-" if r.lag_seconds is None else f"{r.lag_seconds:.1f} s",
                r.error,
            ]
        )
    table = make_table(None, ["replica", "check", "state", "replay lag", "receive lag", "lag seconds", "error"], rows)
    limits = (
        f"critical outside {check.crit_bytes().text} bytes or {check.crit_seconds().text} s; "
        f"primary at {check.body.primary_lsn or '?'}"
    )
    headline = Text(f"replicas: {check.code.name}", style=state_style(check.code.name))
    return Group(headline, table, Text(limits, style="dim"))


def nagios_parts(check: ReplicasCheck, prefix: str = "") -> tuple[str, list[str]]:
    """The summary and perfdata of one sidecar's answer."""
    parts, perf = [], []
    limits = check.limits
    for r in check.body.replicas:
        seconds = "?" if r.lag_seconds is None else f"{r.lag_seconds:.1f}s"
        parts.append(f"{r.name} {r.state} lag {format_size(r.lag_bytes)}/{seconds}")
        perf.append(perfdata(f"{prefix}{r.name}_lag_bytes", r.lag_bytes, "B", limits.warn_bytes, check.crit_bytes()))
        perf.append(
            perfdata(f"{prefix}{r.name}_lag_seconds", r.lag_seconds, "s", limits.warn_seconds, check.crit_seconds())
        )
    return "; ".join(parts), perf


def nagios_line(check: ReplicasCheck) -> str:
    """``REPLICAS <STATE> - summary | perfdata`` (one line)."""
    summary, perf = nagios_parts(check)
    return status_line(SERVICE, check.code, summary, perf)


def nagios_across_pods(results: list[dict[str, Any]]) -> str:
    """One Nagios line for several pods; perfdata labels carry the pod's name."""
    return across_pods(SERVICE, results, ReplicasCheck, nagios_parts)


def as_json(check: object) -> object:
    """The sidecar's body with each replica's verdict ("check") and the thresholds in force."""
    if not isinstance(check, ReplicasCheck):
        return check
    import msgspec

    document: dict[str, Any] = msgspec.to_builtins(check.body)
    for row, code in zip(document["replicas"], check.checks, strict=True):
        row["check"] = code.name
    document["check"] = check.code.name
    document["warn_lag_bytes"] = check.limits.warn_bytes.text if check.limits.warn_bytes else None
    document["warn_lag_seconds"] = check.limits.warn_seconds.text if check.limits.warn_seconds else None
    document["crit_lag_bytes"] = check.crit_bytes().text
    document["crit_lag_seconds"] = check.crit_seconds().text
    return document


def limits_from_options(
    warn_lag_bytes: str | None,
    crit_lag_bytes: str | None,
    warn_lag_seconds: float | None,
    crit_lag_seconds: float | None,
    warning: str | None,
    critical: str | None,
) -> Limits:
    """The thresholds of the command line, checked for consistency (a usage error otherwise)."""
    warn_b, crit_b = size(warn_lag_bytes, "--warn-lag-bytes"), size(crit_lag_bytes, "--crit-lag-bytes")
    if warn_b is not None and crit_b is not None and warn_b > crit_b:
        raise typer.BadParameter("must not be larger than --crit-lag-bytes", param_hint="--warn-lag-bytes")
    if warn_lag_seconds is not None and crit_lag_seconds is not None and warn_lag_seconds > crit_lag_seconds:
        raise typer.BadParameter("must not be larger than --crit-lag-seconds", param_hint="--warn-lag-seconds")
    if warning is not None and warn_lag_seconds is not None:
        raise typer.BadParameter("give --warning or --warn-lag-seconds, not both", param_hint="--warning")
    if critical is not None and crit_lag_seconds is not None:
        raise typer.BadParameter("give --critical or --crit-lag-seconds, not both", param_hint="--critical")
    warn_s = range_option(warning) or (Range.above(warn_lag_seconds) if warn_lag_seconds is not None else None)
    crit_s = range_option(critical) or (Range.above(crit_lag_seconds) if crit_lag_seconds is not None else None)
    return Limits(
        warn_bytes=Range.above(warn_b) if warn_b is not None else None,
        crit_bytes=Range.above(crit_b) if crit_b is not None else None,
        warn_seconds=warn_s,
        crit_seconds=crit_s,
        crit_bytes_number=crit_b,
        crit_seconds_number=crit_lag_seconds,
    )


@sidecar_options(output=CheckOutput, kube=True)
def check_replicas(
    target: Target,
    warn_lag_bytes: Annotated[
        str | None, typer.Option(metavar="SIZE", help="WARNING above this replay lag (a size such as 8MB).")
    ] = None,
    crit_lag_bytes: Annotated[
        str | None, typer.Option(metavar="SIZE", help="CRITICAL above this replay lag (default: the sidecar's).")
    ] = None,
    warn_lag_seconds: Annotated[
        float | None, typer.Option(min=0, metavar="SECONDS", help="WARNING above this many seconds.")
    ] = None,
    crit_lag_seconds: Annotated[
        float | None,
        typer.Option(min=0, metavar="SECONDS", help="CRITICAL above this many seconds (default: the sidecar's)."),
    ] = None,
    warning: Annotated[
        str | None,
        typer.Option(
            "--warning", "-w", metavar="RANGE", help="WARNING when lag seconds are outside this Nagios range."
        ),
    ] = None,
    critical: Annotated[
        str | None,
        typer.Option(
            "--critical", "-c", metavar="RANGE", help="CRITICAL when lag seconds are outside this Nagios range."
        ),
    ] = None,
    replica: Annotated[str | None, typer.Option(metavar="NAME", help="Check only this replica.")] = None,
) -> Exit:
    """Replica lag in bytes and seconds: 0 OK, 1 WARNING, 2 CRITICAL (lagging, down, cut off), 3 UNKNOWN.

    \b
    Example:
      fasterdb-admin check-replicas --warn-lag-bytes 8MB --crit-lag-bytes 64MB -w 10 -c 30 -o nagios
    """
    limits = limits_from_options(warn_lag_bytes, crit_lag_bytes, warn_lag_seconds, crit_lag_seconds, warning, critical)

    def one(client: SidecarClient) -> tuple[Exit, ReplicasCheck]:
        return fetch(client, limits, replica)

    if target.kube is not None:
        return run_across_pods(target.kube, one, target.output, replicas_table, nagios_across_pods, as_json)
    client = target.client()
    try:
        code, check = one(client)
    finally:
        client.close()
    emit(check, target.output, replicas_table, nagios_line, as_json)
    return code
