"""``fasterdb-admin jobs …``: submit a CSV of transfers as a job, follow, list, cancel."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..client import SidecarClient
from ..exitcodes import Exit
from ..job_file import MAX_LISTED, JobFile, read_job_file
from ..options import AdminCommand, positive_id, target
from ..output import diagnose, emit, human_time, make_table, styled

FINAL = ("succeeded", "failed", "cancelled")
JobId = Annotated[int, typer.Argument(metavar="ID", callback=positive_id, help="The id.")]
app = typer.Typer(help="Transfer-batch jobs: submit a CSV, follow, list, cancel.", no_args_is_help=True)


def _job_code(job: dict[str, Any]) -> Exit:
    if job["status"] in ("failed", "cancelled"):
        return Exit.CRITICAL
    if job["status"] == "succeeded" and job.get("failed"):
        return Exit.WARNING
    return Exit.OK


def job_table(job: dict[str, Any], where: Callable[[int], str] | None = None) -> Any:
    """One job as a table, plus its first errors (by the file's line when ``where`` maps an item to it)."""
    dry = bool(job.get("dry_run"))
    rows = [
        [
            job["job_id"],
            styled(job["status"]),
            job["total"],
            job["applied"],
            job["duplicates"],
            job["failed"],
            job.get("throttle_reason"),
            human_time(job.get("updated_at")),
        ]
    ]
    # A dry run moves no money: what it counts as applied was only validated.
    applied = "validated" if dry else "applied"
    title = "dry run: nothing was moved" if dry else None
    columns = ["job", "status", "total", applied, "duplicates", "failed", "throttled", "updated"]
    table = make_table(title, columns, rows)
    errors = job.get("errors") or []
    if not errors:
        return table

    def item(seq: int | None) -> Any:
        return where(seq) if where is not None and seq is not None else seq

    detail = make_table(
        "first errors",
        ["line" if where else "item", "key", "code", "message"],
        [[item(e.get("seq")), e.get("idempotency_key"), e.get("code"), e.get("message")] for e in errors[:MAX_LISTED]],
    )
    return Group(table, detail)


def submit(
    client: SidecarClient, output: str, path: Path, batch_size: int, dry_run: bool, wait: bool, poll: float = 0.5
) -> Exit:
    """POST /jobs from a CSV file; with ``wait``, follow its progress until it ends."""
    job_file: JobFile = read_job_file(path)
    payload = {"kind": "transfer-batch", "items": job_file.items, "batch_size": batch_size, "dry_run": dry_run}
    reply = client.request("POST", "/jobs", json_body=payload, auth="required")
    if reply.status == 422:
        raise job_file.explain(reply.server_message or "") or reply.failure("job")
    job = reply.expect("job", 202)
    if not wait:
        emit(job, output, job_table)
        return Exit.OK
    diagnose(f"job {job['job_id']} queued with {job['total']} transfers")
    job = follow(client, job["job_id"], poll, show_progress=sys.stderr.isatty() or output == "table")
    emit(job, output, lambda j: job_table(j, job_file.where))
    return _job_code(job)


def follow(client: SidecarClient, job_id: int, poll: float, show_progress: bool) -> dict[str, Any]:
    """Poll a job until it ends, drawing a progress bar (on stderr) fed by its counters."""

    def fetch() -> dict[str, Any]:
        return client.request("GET", f"/jobs/{job_id}", auth="required").expect("job status")

    job = fetch()
    columns = (
        TextColumn("job {task.fields[job]} {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not show_progress, transient=False) as bar:
        task = bar.add_task("job", total=job["total"], job=job_id, status=job["status"], detail="")
        while True:
            done = job["applied"] + job["duplicates"] + job["failed"]
            detail = f"failed {job['failed']}" + (
                f" - throttled: {job['throttle_reason']}" if job["status"] == "throttled" else ""
            )
            bar.update(task, completed=done, status=job["status"], detail=detail)
            if job["status"] in FINAL:
                return job
            time.sleep(poll)  # the poll interval of a progress bar, not a wait for a state
            job = fetch()


@app.command("submit", cls=AdminCommand)
def submit_command(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="CSV: from_account,to_account,amount[,idempotency_key]; - for stdin.")
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=1000, metavar="N", help="Transfers per transaction.")] = 100,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report without moving money.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar until it ends.")] = False,
) -> Exit:
    """Submit a transfer-batch job. With --wait: 0 succeeded, 1 some items failed, 2 job failed/cancelled.

    FILE is CSV (UTF-8, with or without a byte-order mark; CRLF or LF): from_account,to_account,
    amount[,idempotency_key], a header row optional, at most 100,000 transfers per job. Errors name
    the file's lines, every bad line up to 20 (a file the CLI cannot read: exit 3; items the sidecar
    refuses: exit 2, nothing is submitted). Items without a key get one, so a resubmitted file
    applies nothing twice only if it carries its keys.

    \b
    Examples:
      fasterdb-admin jobs submit payouts.csv --batch-size 500 --wait
      fasterdb-admin jobs submit payouts.csv --dry-run --wait
    """
    chosen = target(ctx)
    with chosen.client() as client:
        return submit(client, chosen.output, Path(file), batch_size, dry_run, wait)


@app.command("status", cls=AdminCommand)
def status_command(ctx: typer.Context, job_id: JobId) -> Exit:
    """A job's status and progress: 0 running/succeeded, 1 succeeded with failed items, 2 failed/cancelled.

    \b
    Example:
      fasterdb-admin jobs status 17 -o json
    """
    chosen = target(ctx)
    with chosen.client() as client:
        job = client.request("GET", f"/jobs/{job_id}", auth="required").expect("job status")
    emit(job, chosen.output, job_table)
    return _job_code(job)


@app.command("list", cls=AdminCommand)
def list_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, metavar="N", help="How many recent jobs.")] = 20,
) -> Exit:
    """Recent jobs, newest first.

    \b
    Example:
      fasterdb-admin jobs list --limit 5
    """
    chosen = target(ctx)
    with chosen.client() as client:
        body = client.request("GET", "/jobs", params={"limit": limit}, auth="required").expect("jobs")
    rows = [
        [
            j["job_id"],
            styled(j["status"]),
            j["total"],
            f"{j['applied']} (dry run)" if j.get("dry_run") else j["applied"],
            j["duplicates"],
            j["failed"],
            human_time(j.get("updated_at")),
        ]
        for j in body.get("jobs", [])
    ]
    columns = ["job", "status", "total", "applied", "duplicates", "failed", "updated"]
    emit(body, chosen.output, lambda _: make_table(None, columns, rows))
    return Exit.OK


@app.command("cancel", cls=AdminCommand)
def cancel_command(ctx: typer.Context, job_id: JobId) -> Exit:
    """Cancel a queued or running job (applied items stay applied): 0 cancelled, 2 refused.

    \b
    Example:
      fasterdb-admin jobs cancel 17
    """
    chosen = target(ctx)
    with chosen.client() as client:
        job = client.request("POST", f"/jobs/{job_id}/cancel", auth="required").expect("cancel")
    emit(job, chosen.output, job_table)
    return Exit.OK
