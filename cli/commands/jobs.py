"""``fasterdb-admin jobs …``: submit a CSV of transfers as a job, follow, list, cancel."""

from __future__ import annotations

import csv
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from fasterdb.contract import JOB_MAX_ITEMS

from ..client import CliError, SidecarClient
from ..exitcodes import Exit
from ..options import Target, positive_id, sidecar_options
from ..output import diagnose, emit, human_time, make_table, state_style
from .admin import require_ok

FINAL = ("succeeded", "failed", "cancelled")
app = typer.Typer(help="Transfer-batch jobs: submit a CSV, follow, list, cancel.", no_args_is_help=True)


@dataclass(frozen=True)
class CsvItems:
    """The transfers of a CSV file and the line each came from (for errors the sidecar reports)."""

    items: list[dict[str, Any]]
    lines: list[int]
    source: str

    def where(self, index: int) -> str:
        """``FILE:LINE`` of item ``index``."""
        return f"{self.source}:{self.lines[index]}" if 0 <= index < len(self.lines) else self.source

    def explain(self, message: str) -> str:
        """The sidecar's message with item numbers and JSON paths turned into file lines."""
        found = re.search(r"(?:\$\.items\[|item )(\d+)", message)
        if found is None:
            return message
        message = re.sub(r" - at `\$\.items\[\d+\]\.?(\w*)`", lambda m: f" ({m.group(1) or 'row'})", message)
        message = re.sub(r"item \d+[:.]?\s*", "", message)
        return f"{self.where(int(found.group(1)))}: {message}"


def decode_csv(data: bytes, source: str) -> str:
    """UTF-8 text, with or without a byte-order mark (Excel's "CSV UTF-8"); anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CliError(f"{source} is UTF-16 text: save it as CSV UTF-8 (comma-separated)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CliError(f"{source}:{line}: not UTF-8 text (Latin-1 or Windows-1252?): save it as CSV UTF-8") from None


def read_csv(path: Path) -> CsvItems:
    """Items from CSV ``from_account,to_account,amount[,idempotency_key]`` (a header row is optional)."""
    source = "stdin" if str(path) == "-" else str(path)
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = decode_csv(data, source)
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if not items and row[0].strip().lower() in ("from_account", "from"):
            continue  # the header
        if len(row) not in (3, 4):
            raise CliError(f"{source}:{number}: expected from_account,to_account,amount[,idempotency_key]")
        try:
            item: dict[str, Any] = {
                "from_account": int(row[0].strip()),
                "to_account": int(row[1].strip()),
                "amount": row[2].strip(),
            }
        except ValueError:
            raise CliError(
                f"{source}:{number}: account ids must be whole numbers, not {row[0]!r}, {row[1]!r}"
            ) from None
        if len(row) == 4 and row[3].strip():
            item["idempotency_key"] = row[3].strip()
        items.append(item)
        lines.append(number)
    if not items:
        raise CliError(f"{source}: no transfers found")
    if len(items) > JOB_MAX_ITEMS:
        raise CliError(f"{source} has {len(items):,} transfers; a job takes at most {JOB_MAX_ITEMS:,}: split the file")
    return CsvItems(items, lines, source)


def _job_code(job: dict[str, Any]) -> Exit:
    if job["status"] in ("failed", "cancelled"):
        return Exit.CRITICAL
    if job["status"] == "succeeded" and job.get("failed"):
        return Exit.WARNING
    return Exit.OK


def job_table(job: dict[str, Any]) -> Any:
    """One job as a table (plus its first errors)."""
    dry = bool(job.get("dry_run"))
    rows = [
        [
            job["job_id"],
            Text(job["status"], style=state_style(job["status"])),
            job["total"],
            job["applied"],
            job["duplicates"],
            job["failed"],
            job.get("throttle_reason"),
        ]
    ]
    # A dry run moves no money: what it counts as applied was only validated.
    applied = "validated" if dry else "applied"
    title = f"dry run: nothing was moved (updated {human_time(job.get('updated_at'))})" if dry else None
    table = make_table(title, ["job", "status", "total", applied, "duplicates", "failed", "throttled"], rows)
    errors = job.get("errors") or []
    if not errors:
        return table
    from rich.console import Group

    detail = make_table(
        "first errors",
        ["item", "key", "code", "message"],
        [[e.get("seq"), e.get("idempotency_key"), e.get("code"), e.get("message")] for e in errors[:20]],
    )
    return Group(table, detail)


def submit(
    client: SidecarClient, output: str, path: Path, batch_size: int, dry_run: bool, wait: bool, poll: float = 0.5
) -> Exit:
    """POST /jobs from a CSV file; with ``wait``, follow its progress until it ends."""
    csv_items = read_csv(path)
    payload = {"kind": "transfer-batch", "items": csv_items.items, "batch_size": batch_size, "dry_run": dry_run}
    try:
        job = require_ok(client.request("POST", "/jobs", json_body=payload, admin=True), "job", ok=(202,))
    except CliError as exc:
        raise CliError(csv_items.explain(exc.message), exc.code) from None
    if not wait:
        emit(job, output, job_table)
        return Exit.OK
    diagnose(f"job {job['job_id']} queued with {job['total']} transfers")
    job = follow(client, job["job_id"], poll, show_progress=sys.stderr.isatty() or output == "table")
    emit(job, output, job_table)
    return _job_code(job)


def follow(client: SidecarClient, job_id: int, poll: float, show_progress: bool) -> dict[str, Any]:
    """Poll a job until it ends, drawing a progress bar (on stderr) fed by its counters."""

    def fetch() -> dict[str, Any]:
        return require_ok(client.request("GET", f"/jobs/{job_id}", admin=True), "job status")

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
            time.sleep(poll)
            job = fetch()


def show_status(client: SidecarClient, output: str, job_id: int) -> Exit:
    """GET /jobs/{id}."""
    job = require_ok(client.request("GET", f"/jobs/{job_id}", admin=True), "job status")
    emit(job, output, job_table)
    return _job_code(job)


def show_list(client: SidecarClient, output: str, limit: int) -> Exit:
    """GET /jobs."""
    body = require_ok(client.request("GET", "/jobs", params={"limit": limit}, admin=True), "jobs")
    rows = [
        [
            j["job_id"],
            Text(j["status"], style=state_style(j["status"])),
            j["total"],
            f"{j['applied']} (dry run)" if j.get("dry_run") else j["applied"],
            j["duplicates"],
            j["failed"],
            human_time(j.get("updated_at")),
        ]
        for j in body.get("jobs", [])
    ]
    emit(
        body,
        output,
        lambda b: make_table(None, ["job", "status", "total", "applied", "duplicates", "failed", "updated"], rows),
    )
    return Exit.OK


def send_cancel(client: SidecarClient, output: str, job_id: int) -> Exit:
    """POST /jobs/{id}/cancel."""
    job = require_ok(client.request("POST", f"/jobs/{job_id}/cancel", admin=True), "cancel")
    emit(job, output, job_table)
    return Exit.OK


def _with_client(target: Target, action: Callable[[SidecarClient], Exit]) -> Exit:
    client = target.client()
    try:
        return action(client)
    finally:
        client.close()


@app.command("submit")
@sidecar_options(token=True)
def submit_command(
    target: Target,
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
    the file's line. Items without a key get one, so a resubmitted file applies nothing twice only
    if it carries its keys.

    \b
    Examples:
      fasterdb-admin jobs submit payouts.csv --batch-size 500 --wait
      fasterdb-admin jobs submit payouts.csv --dry-run --wait
    """
    return _with_client(target, lambda c: submit(c, target.output, Path(file), batch_size, dry_run, wait))


@app.command("status")
@sidecar_options(token=True)
def status_command(
    target: Target, job_id: Annotated[int, typer.Argument(metavar="ID", callback=positive_id, help="The id.")]
) -> Exit:
    """A job's status and progress: 0 running/succeeded, 1 succeeded with failed items, 2 failed/cancelled.

    \b
    Example:
      fasterdb-admin jobs status 17 -o json
    """
    return _with_client(target, lambda c: show_status(c, target.output, job_id))


@app.command("list")
@sidecar_options(token=True)
def list_command(
    target: Target,
    limit: Annotated[int, typer.Option(min=1, max=1000, metavar="N", help="How many recent jobs.")] = 20,
) -> Exit:
    """Recent jobs, newest first.

    \b
    Example:
      fasterdb-admin jobs list --limit 5
    """
    return _with_client(target, lambda c: show_list(c, target.output, limit))


@app.command("cancel")
@sidecar_options(token=True)
def cancel_command(
    target: Target, job_id: Annotated[int, typer.Argument(metavar="ID", callback=positive_id, help="The id.")]
) -> Exit:
    """Cancel a queued or running job (applied items stay applied): 0 cancelled, 2 refused.

    \b
    Example:
      fasterdb-admin jobs cancel 17
    """
    return _with_client(target, lambda c: send_cancel(c, target.output, job_id))
