"""Admin commands: ``transfer``, ``jobs …``, ``db migrate``, ``accounts …`` (bearer token required)."""

from __future__ import annotations

import csv
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.client import CliError, Reply, SidecarClient, expect_fields
from cli.exitcodes import Exit
from cli.output import diagnose, emit, make_table

FINAL = ("succeeded", "failed", "cancelled")


def _require_ok(reply: Reply, what: str, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    """The body of a successful answer; a refusal is CRITICAL with the server's reason."""
    if reply.status in ok:
        return reply.body if isinstance(reply.body, dict) else {"result": reply.body}
    if reply.status in (401, 403):
        raise CliError(f"{what}: {reply.error_message}", Exit.CRITICAL)
    if 400 <= reply.status < 600:
        raise CliError(f"{what} refused: {reply.error_message}", Exit.CRITICAL)
    raise CliError(f"{what}: unexpected answer HTTP {reply.status}")


def migrate(client: SidecarClient, output: str) -> Exit:
    """POST /admin/migrate."""
    body = _require_ok(client.request("POST", "/admin/migrate", admin=True), "migrate")
    emit(body, output, lambda b: f"schema {b['schema']} at version {b['version']}; applied: {b['applied'] or 'none'}")
    return Exit.OK


def transfer(client: SidecarClient, output: str, src: int, dst: int, amount: str, key: str | None) -> Exit:
    """POST /transfers; prints the generated key (stderr) so a failed call can be retried safely."""
    if key is None:
        key = f"cli-{uuid.uuid4()}"
        diagnose(f"idempotency key: {key} (repeat with --idempotency-key {key} to retry safely)")
    payload = {"from_account": src, "to_account": dst, "amount": amount, "idempotency_key": key}
    try:
        reply = client.request("POST", "/transfers", json_body=payload, admin=True)
    except CliError as exc:
        raise CliError(
            f"{exc.message}; the transfer may or may not have been applied: retry with --idempotency-key {key}",
            exc.code,
        ) from None
    if reply.status == 503:
        raise CliError(
            f"transfer not applied: {reply.error_message}; retry with --idempotency-key {key}", Exit.CRITICAL
        )
    body = _require_ok(reply, "transfer")
    expect_fields(reply, "transfer_id", "from_balance", "to_balance")

    def table(b: dict[str, Any]) -> Any:
        note = " (already applied earlier with this key)" if b.get("duplicate") else ""
        return make_table(
            f"transfer {b['transfer_id']}{note}",
            ["from", "to", "amount", "from balance", "to balance", "key"],
            [[b["from_account"], b["to_account"], b["amount"], b["from_balance"], b["to_balance"], key]],
        )

    emit(body, output, table)
    return Exit.OK


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Items from CSV ``from_account,to_account,amount[,idempotency_key]`` (a header row is optional)."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    items = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() in ("from_account", "from"):
            continue
        if len(row) not in (3, 4):
            raise CliError(f"{path}:{number}: expected from_account,to_account,amount[,idempotency_key]")
        try:
            item: dict[str, Any] = {"from_account": int(row[0]), "to_account": int(row[1]), "amount": row[2].strip()}
        except ValueError:
            raise CliError(f"{path}:{number}: account ids must be integers") from None
        if len(row) == 4 and row[3].strip():
            item["idempotency_key"] = row[3].strip()
        items.append(item)
    if not items:
        raise CliError(f"{path}: no transfers found")
    return items


def _job_code(job: dict[str, Any]) -> Exit:
    if job["status"] in ("failed", "cancelled"):
        return Exit.CRITICAL
    if job["status"] == "succeeded" and job.get("failed"):
        return Exit.WARNING
    return Exit.OK


def job_table(job: dict[str, Any]) -> Any:
    """One job as a table (plus its first errors)."""
    rows = [
        [
            job["job_id"],
            job["status"],
            job["total"],
            job["applied"],
            job["duplicates"],
            job["failed"],
            "yes" if job.get("dry_run") else "no",
            job.get("throttle_reason"),
        ]
    ]
    table = make_table(
        None, ["job", "status", "total", "applied", "duplicates", "failed", "dry run", "throttled"], rows
    )
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
    items = read_csv(path)
    payload = {"kind": "transfer-batch", "items": items, "batch_size": batch_size, "dry_run": dry_run}
    job = _require_ok(client.request("POST", "/jobs", json_body=payload, admin=True), "job", ok=(202,))
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
        return _require_ok(client.request("GET", f"/jobs/{job_id}", admin=True), "job status")

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


def status(client: SidecarClient, output: str, job_id: int) -> Exit:
    """GET /jobs/{id}."""
    job = _require_ok(client.request("GET", f"/jobs/{job_id}", admin=True), "job status")
    emit(job, output, job_table)
    return _job_code(job)


def list_jobs(client: SidecarClient, output: str, limit: int) -> Exit:
    """GET /jobs."""
    body = _require_ok(client.request("GET", "/jobs", params={"limit": limit}, admin=True), "jobs")
    rows = [
        [j["job_id"], j["status"], j["total"], j["applied"], j["duplicates"], j["failed"], j["updated_at"]]
        for j in body.get("jobs", [])
    ]
    emit(
        body,
        output,
        lambda b: make_table(None, ["job", "status", "total", "applied", "duplicates", "failed", "updated"], rows),
    )
    return Exit.OK


def cancel(client: SidecarClient, output: str, job_id: int) -> Exit:
    """POST /jobs/{id}/cancel."""
    job = _require_ok(client.request("POST", f"/jobs/{job_id}/cancel", admin=True), "cancel")
    emit(job, output, job_table)
    return Exit.OK


def seed(client: SidecarClient, output: str, count: int, balance: str, start: int) -> Exit:
    """Create accounts start..start+count-1 with ``balance``; existing ones are counted, not changed."""
    created = existing = 0
    for account_id in range(start, start + count):
        reply = client.request("POST", "/accounts", json_body={"id": account_id, "balance": balance}, admin=True)
        if reply.status == 409:
            existing += 1
            continue
        _require_ok(reply, f"account {account_id}", ok=(201,))
        created += 1
    body = {"created": created, "existing": existing, "first_id": start, "last_id": start + count - 1}
    emit(
        body,
        output,
        lambda b: (
            f"created {b['created']} accounts, {b['existing']} existed already (ids {b['first_id']}-{b['last_id']})"
        ),
    )
    return Exit.OK


def show(client: SidecarClient, output: str, account_id: int, source: str) -> Exit:
    """GET /accounts/{id}."""
    body = _require_ok(
        client.request("GET", f"/accounts/{account_id}", params={"source": source}, admin=True), "account"
    )
    emit(
        body,
        output,
        lambda b: make_table(None, ["account", "balance", "read from"], [[b["id"], b["balance"], b.get("source")]]),
    )
    return Exit.OK
