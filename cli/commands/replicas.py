"""``fasterdb-admin check-replicas``: replica lag with warning/critical thresholds, Nagios style."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from cli.client import CliError, SidecarClient, expect_fields
from cli.exitcodes import Exit, worst
from cli.kube import run_across_pods
from cli.options import Target, sidecar_options
from cli.output import CheckOutput, emit, make_table
from service.sizes import SizeError, format_size, parse_size


def judge(replica: dict[str, Any], warn_bytes: int | None, warn_seconds: float | None) -> Exit:
    """CRITICAL when the sidecar says not ok (judged against the critical thresholds), WARNING past warn."""
    if not replica.get("ok"):
        return Exit.CRITICAL
    lag_bytes, lag_seconds = replica.get("lag_bytes"), replica.get("lag_seconds")
    if warn_bytes is not None and lag_bytes is not None and lag_bytes > warn_bytes:
        return Exit.WARNING
    if warn_seconds is not None and lag_seconds is not None and lag_seconds > warn_seconds:
        return Exit.WARNING
    return Exit.OK


def fetch(
    client: SidecarClient,
    *,
    warn_bytes: int | None,
    crit_bytes: int | None,
    warn_seconds: float | None,
    crit_seconds: float | None,
    replica: str | None,
) -> tuple[Exit, dict[str, Any]]:
    """Ask /health/replicas with the critical thresholds; add each replica's check and the overall one."""
    reply = client.get(
        "/health/replicas",
        max_lag_bytes=crit_bytes,
        max_lag_seconds=crit_seconds,
        replica=replica,
    )
    if reply.status not in (200, 503):
        raise CliError(f"/health/replicas: {reply.error_message}")
    body = expect_fields(reply, "status", "replicas", "max_lag_bytes", "max_lag_seconds")
    codes = []
    for r in body["replicas"]:
        code = judge(r, warn_bytes, warn_seconds)
        r["check"] = code.name
        codes.append(code)
    overall = worst(codes) if codes else Exit.UNKNOWN
    body["check"] = overall.name
    body["warn_lag_bytes"], body["warn_lag_seconds"] = warn_bytes, warn_seconds
    return overall, body


def replicas_table(body: dict[str, Any]) -> Group:
    """One row per replica."""
    rows = [
        [
            r["name"],
            r.get("check"),
            r["state"],
            format_size(r.get("lag_bytes")),
            format_size(r.get("receive_lag_bytes")),
            "-" if r.get("lag_seconds") is None else f"{r['lag_seconds']:.1f} s",
            r.get("error"),
        ]
        for r in body["replicas"]
    ]
    table = make_table(None, ["replica", "check", "state", "replay lag", "receive lag", "lag seconds", "error"], rows)
    limits = (
        f"critical above {format_size(body['max_lag_bytes'])} or {body['max_lag_seconds']:g} s; "
        f"primary at {body.get('primary_lsn') or '?'}"
    )
    if not rows:
        limits = "no replicas configured"
    return Group(Text(f"replicas: {body['check']}", style=_style(body["check"])), table, Text(limits, style="dim"))


def _style(check: str) -> str:
    return {"OK": "green", "WARNING": "yellow"}.get(check, "bold red")


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:g}" if unit == "s" else str(int(value))


def _perf(label: str, value: float | None, unit: str, warn: float | None, crit: float | None) -> str:
    """One Nagios perfdata item: label=value[unit];warn;crit;min ("U" when unknown)."""
    label = f"'{label}'" if " " in label else label
    shown = "U" if value is None else _num(value, unit) + unit
    return f"{label}={shown};{_num(warn, unit)};{_num(crit, unit)};0"


def nagios_line(body: dict[str, Any]) -> str:
    """``REPLICAS <STATE> - summary | perfdata`` (one line)."""
    parts, perf = [], []
    for r in body["replicas"]:
        seconds = "?" if r.get("lag_seconds") is None else f"{r['lag_seconds']:.1f}s"
        parts.append(f"{r['name']} {r['state']} lag {format_size(r.get('lag_bytes'))}/{seconds}")
        perf.append(
            _perf(
                f"{r['name']}_lag_bytes",
                r.get("lag_bytes"),
                "B",
                body["warn_lag_bytes"],
                body["max_lag_bytes"],
            )
        )
        perf.append(
            _perf(
                f"{r['name']}_lag_seconds",
                r.get("lag_seconds"),
                "s",
                body["warn_lag_seconds"],
                body["max_lag_seconds"],
            )
        )
    summary = "; ".join(parts) or "no replicas configured"
    return f"REPLICAS {body['check']} - {summary} | {' '.join(perf)}".rstrip(" |")


def nagios_across_pods(results: list[dict[str, Any]]) -> str:
    """One Nagios line for several pods; perfdata labels are prefixed with the pod name."""
    code = worst([Exit[entry["exit"]] for entry in results])
    parts: list[str] = []
    perf: list[str] = []
    for entry in results:
        if "error" in entry:
            parts.append(f"{entry['pod']}: {entry['error']}")
            continue
        line = nagios_line(entry["result"])
        summary, _, data = line.partition(" - ")[2].partition(" | ")
        parts.append(f"{entry['pod']}: {summary}")
        perf.extend(f"{entry['pod']}/{item}" for item in data.split())
    return f"REPLICAS {code.name} - {'; '.join(parts)} | {' '.join(perf)}".rstrip(" |")


def _size(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except SizeError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@sidecar_options(output=CheckOutput, kube=True)
def check_replicas(
    target: Target,
    warn_lag_bytes: Annotated[
        str | None, typer.Option(metavar="SIZE", help="WARNING above this replay lag (size, e.g. 8MB).")
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
    replica: Annotated[str | None, typer.Option(metavar="NAME", help="Check only this replica.")] = None,
) -> Exit:
    """Replica lag in bytes and seconds: 0 OK, 1 WARNING, 2 CRITICAL (lagging, down, cut off), 3 UNKNOWN."""
    warn_b, crit_b = _size(warn_lag_bytes, "--warn-lag-bytes"), _size(crit_lag_bytes, "--crit-lag-bytes")
    if warn_b is not None and crit_b is not None and warn_b > crit_b:
        raise typer.BadParameter("must not be larger than --crit-lag-bytes", param_hint="--warn-lag-bytes")
    if warn_lag_seconds is not None and crit_lag_seconds is not None and warn_lag_seconds > crit_lag_seconds:
        raise typer.BadParameter("must not be larger than --crit-lag-seconds", param_hint="--warn-lag-seconds")

    def one(client: SidecarClient) -> tuple[Exit, dict[str, Any]]:
        return fetch(
            client,
            warn_bytes=warn_b,
            crit_bytes=crit_b,
            warn_seconds=warn_lag_seconds,
            crit_seconds=crit_lag_seconds,
            replica=replica,
        )

    if target.kube is not None:
        return run_across_pods(target.kube, one, target.output, replicas_table, nagios_across_pods)
    client = target.client()
    try:
        code, body = one(client)
    finally:
        client.close()
    emit(body, target.output, replicas_table, nagios_line)
    return code
