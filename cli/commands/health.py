"""``fasterdb-admin health``: the sidecar's /health/db (0 ok, 2 unavailable, 3 unknown)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from cli.client import CliError, SidecarClient, expect_fields
from cli.exitcodes import Exit
from cli.kube import run_across_pods
from cli.options import Target, sidecar_options
from cli.output import emit, make_table


def fetch_health(client: SidecarClient, replicas: bool = True) -> tuple[Exit, dict[str, Any]]:
    """Ask /health/db; OK on 200, CRITICAL on 503 with a health body, else CliError (UNKNOWN)."""
    reply = client.get("/health/db", replicas="true" if replicas else None)
    if reply.status not in (200, 503):
        raise CliError(f"/health/db: {reply.error_message}")
    body = expect_fields(reply, "status", "primary")
    return (Exit.OK if reply.status == 200 and body["status"] == "ok" else Exit.CRITICAL), body


def health_table(body: dict[str, Any]) -> Group:
    """The health answer as a table, one row per pool."""
    rows = []
    for role, pools in (("primary", [body["primary"]]), ("replica", body.get("replicas") or [])):
        for pool in pools:
            rows.append(
                [
                    pool.get("name", role),
                    role,
                    "ok" if pool.get("ok") else "DOWN",
                    pool.get("latency_ms"),
                    pool.get("error"),
                ]
            )
    status = body.get("status", "?")
    headline = Text(f"database: {status}", style="green" if status == "ok" else "bold red")
    table = make_table(None, ["pool", "role", "state", "latency ms", "error"], rows)
    footer = Text(f"checked at {body.get('checked_at', '?')} ({body.get('age_ms', '?')} ms ago)", style="dim")
    return Group(headline, table, footer)


@sidecar_options(kube=True)
def health(target: Target) -> Exit:
    """Is the database usable? /health/db: 0 ok, 2 unavailable, 3 sidecar unreachable."""
    if target.kube is not None:
        return run_across_pods(target.kube, fetch_health, target.output, health_table)
    client = target.client()
    try:
        code, body = fetch_health(client)
    finally:
        client.close()
    emit(body, target.output, health_table)
    return code
