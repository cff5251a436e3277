"""``fasterdb-admin check-replicas``: replica lag with warning/critical thresholds, Nagios style."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import ReplicaBody, ReplicasBody

from ..check import Verdict, run_check
from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata
from ..options import target
from ..output import human_size, make_table, styled
from ..thresholds import human_seconds, ordered, size
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

    def critical(self, body: ReplicasBody) -> tuple[Range, Range]:
        """The critical byte and seconds ranges in force (the sidecar's FASTERDB_MAX_LAG_* by default)."""
        return (
            self.crit_bytes or Range.above(body.max_lag_bytes),
            self.crit_seconds or Range.above(body.max_lag_seconds),
        )


@dataclass(frozen=True)
class ReplicasCheck(Verdict):
    """The sidecar's answer, each replica's verdict and the overall one."""

    body: ReplicasBody
    checks: list[Exit]
    code: Exit
    limits: Limits

    def crit_bytes(self) -> Range:
        """The critical byte range in force."""
        return self.limits.critical(self.body)[0]

    def crit_seconds(self) -> Range:
        """The critical seconds range in force."""
        return self.limits.critical(self.body)[1]

    def table(self) -> Group:
        """One row per replica; the thresholds in force under it."""
        rows = [
            [
                r.name,
                styled(code.name),
                styled(r.state),
                human_size(r.lag_bytes),
                human_size(r.receive_lag_bytes),
                human_seconds(r.lag_seconds),
                r.error,
            ]
            for r, code in zip(self.body.replicas, self.checks, strict=True)
        ]
        columns = ["replica", "check", "state", "replay lag", "receive lag", "lag seconds", "error"]
        limits = [f"critical {self.crit_bytes().describe(human_size)} or {self.crit_seconds().describe(human_seconds)}"]
        if self.limits.warn_bytes or self.limits.warn_seconds:
            warn = [
                r.describe(u)
                for r, u in ((self.limits.warn_bytes, human_size), (self.limits.warn_seconds, human_seconds))
                if r
            ]
            limits.append(f"warning {' or '.join(warn)}")
        footer = f"{'; '.join(limits)}; primary at {self.body.primary_lsn or '?'}"
        return Group(
            Text("replicas: ") + styled(self.code.name), make_table(None, columns, rows), Text(footer, style="dim")
        )

    def document(self) -> Any:
        """The sidecar's body with each replica's verdict ("check") and the thresholds in force."""
        document: dict[str, Any] = msgspec.to_builtins(self.body)
        for row, code in zip(document["replicas"], self.checks, strict=True):
            row["check"] = code.name
        document["check"] = self.code.name
        document["warn_lag_bytes"] = self.limits.warn_bytes.text if self.limits.warn_bytes else None
        document["warn_lag_seconds"] = self.limits.warn_seconds.text if self.limits.warn_seconds else None
        document["crit_lag_bytes"] = self.crit_bytes().text
        document["crit_lag_seconds"] = self.crit_seconds().text
        return document

    def summary(self) -> str:
        """``replica-1 streaming lag 0 B/0.0s``, for each replica."""
        return "; ".join(
            f"{r.name} {r.state} lag {human_size(r.lag_bytes)}/{human_seconds(r.lag_seconds)}"
            for r in self.body.replicas
        )

    def perfdata(self, prefix: str = "") -> list[str]:
        """Replay lag in bytes and seconds per replica, with the ranges in force."""
        perf = []
        for r in self.body.replicas:
            perf.append(
                perfdata(f"{prefix}{r.name}_lag_bytes", r.lag_bytes, "B", self.limits.warn_bytes, self.crit_bytes())
            )
            perf.append(
                perfdata(
                    f"{prefix}{r.name}_lag_seconds", r.lag_seconds, "s", self.limits.warn_seconds, self.crit_seconds()
                )
            )
        return perf


def judge_replica(replica: ReplicaBody, limits: Limits, body: ReplicasBody) -> Exit:
    """CRITICAL when it cannot serve or crosses a critical range; WARNING past a warning range."""
    if replica.error is not None or replica.lag_bytes is None or replica.lag_seconds is None:
        return Exit.CRITICAL  # down, disconnected, promoted (split brain), or its lag is unknown
    crit_bytes, crit_seconds = limits.critical(body)
    return worst(
        [
            judge(replica.lag_bytes, limits.warn_bytes, crit_bytes),
            judge(replica.lag_seconds, limits.warn_seconds, crit_seconds),
        ]
    )


def fetch(client: SidecarClient, limits: Limits, replica: str | None = None) -> ReplicasCheck:
    """Ask /health/replicas and judge every replica; UNKNOWN when none is configured."""
    reply = client.get(
        "/health/replicas",
        max_lag_bytes=limits.crit_bytes_number,
        max_lag_seconds=limits.crit_seconds_number,
        replica=replica,
    )
    if reply.status not in (200, 503):
        raise reply.failure("/health/replicas")
    return verdict(reply.decode(ReplicasBody), limits)


def verdict(body: ReplicasBody, limits: Limits) -> ReplicasCheck:
    """Every replica judged; the worst is the verdict (UNKNOWN when none is configured)."""
    checks = [judge_replica(r, limits, body) for r in body.replicas]
    if not checks:
        raise CliError("no replicas are configured on this sidecar (FASTERDB_REPLICA_DSNS)")
    return ReplicasCheck(body, checks, worst(checks), limits)


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
    ordered(warn_b, crit_b, ("--warn-lag-bytes", "--crit-lag-bytes"))
    ordered(warn_lag_seconds, crit_lag_seconds, ("--warn-lag-seconds", "--crit-lag-seconds"))
    if warning is not None and warn_lag_seconds is not None:
        raise typer.BadParameter("give --warning or --warn-lag-seconds, not both", param_hint="--warning")
    if critical is not None and crit_lag_seconds is not None:
        raise typer.BadParameter("give --critical or --crit-lag-seconds, not both", param_hint="--critical")
    warn_s = range_option(warning, "--warning") or (
        Range.above(warn_lag_seconds) if warn_lag_seconds is not None else None
    )
    crit_s = range_option(critical, "--critical") or (
        Range.above(crit_lag_seconds) if crit_lag_seconds is not None else None
    )
    return Limits(
        warn_bytes=Range.above(warn_b) if warn_b is not None else None,
        crit_bytes=Range.above(crit_b) if crit_b is not None else None,
        warn_seconds=warn_s,
        crit_seconds=crit_s,
        crit_bytes_number=crit_b,
        crit_seconds_number=crit_lag_seconds,
    )


def check_replicas(
    ctx: typer.Context,
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
    return run_check(target(ctx), SERVICE, lambda client: fetch(client, limits, replica))
