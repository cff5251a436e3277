"""``fasterdb-admin``: Typer app; every failure is one stderr line and a Nagios exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli.client import CliError, SidecarClient
from cli.commands import admin as admin_cmd
from cli.commands import health as health_cmd
from cli.commands import pools as pools_cmd
from cli.commands import replicas as replicas_cmd
from cli.exitcodes import Exit
from cli.kube import DEFAULT_SELECTOR, KubeTarget, across_pods, discover, emit_across_pods
from cli.options import DEFAULT_TIMEOUT, DEFAULT_URL, Context, Kube, Namespace, OutputOpt, Selector, Timeout, Token, Url
from cli.output import CheckOutput, Output, diagnose
from service.sizes import SizeError, parse_size


class AdminGroup(TyperGroup):
    """Maps click's outcomes onto our exit codes: a usage error is UNKNOWN (3), never 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; translate every outcome into one stderr line and an exit code."""
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except CliError as exc:
            diagnose(exc.message)
            sys.exit(exc.code)
        except typer.Abort:
            diagnose("aborted")
            sys.exit(Exit.UNKNOWN)
        except Exception as exc:
            if not _is_click_exception(exc):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.stderr.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
                sys.exit(Exit.UNKNOWN)
            # Bad option, missing argument, invalid value: a usage error is UNKNOWN, never 2.
            diagnose(f"usage error: {exc.format_message()}" + _hint(exc))  # type: ignore[attr-defined]
            sys.exit(Exit.UNKNOWN)
        sys.exit(rv if isinstance(rv, int) else Exit.OK)


def _is_click_exception(exc: Exception) -> bool:
    # Typer vendors click in recent releases (typer._click); match on the class, not the module.
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _hint(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


app = typer.Typer(
    cls=AdminGroup,
    name="fasterdb-admin",
    help="Admin CLI of the fasterdb sidecar. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Admin CLI of the fasterdb sidecar."""


def _finish(code: Exit) -> None:
    raise typer.Exit(int(code))


def _client(url: str, token: str | None, timeout: float) -> SidecarClient:
    return SidecarClient(url, token, timeout)


def _across_pods(target: KubeTarget, one: Any, output: str, table: Any) -> Exit:
    """--kube: run ``one`` on every sidecar pod, print one section per pod, return the worst code."""
    code, results = across_pods(dict(discover(target)), one)
    emit_across_pods(results, output, table)
    return code


@app.command()
def health(
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
    kube: Kube = False,
    namespace: Namespace = None,
    selector: Selector = DEFAULT_SELECTOR,
    context: Context = None,
) -> None:
    """Is the database usable? /health/db: 0 ok, 2 unavailable, 3 sidecar unreachable."""
    if kube:
        target = KubeTarget(namespace, selector, context, timeout)
        _finish(_across_pods(target, health_cmd.fetch_health, output.value, health_cmd.health_table))
    client = _client(url, token, timeout)
    try:
        _finish(health_cmd.run(client, output.value))
    finally:
        client.close()


def _size(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except SizeError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command("check-replicas")
def check_replicas(
    warn_lag_bytes: Annotated[str | None, typer.Option(help="WARNING above this replay lag (size, e.g. 8MB).")] = None,
    crit_lag_bytes: Annotated[
        str | None, typer.Option(help="CRITICAL above this replay lag (default: the sidecar's).")
    ] = None,
    warn_lag_seconds: Annotated[float | None, typer.Option(min=0, help="WARNING above this many seconds.")] = None,
    crit_lag_seconds: Annotated[
        float | None, typer.Option(min=0, help="CRITICAL above this many seconds (default: the sidecar's).")
    ] = None,
    replica: Annotated[str | None, typer.Option(help="Check only this replica.")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: Annotated[CheckOutput, typer.Option("--output", "-o", help="Output format.")] = CheckOutput.table,
    kube: Kube = False,
    namespace: Namespace = None,
    selector: Selector = DEFAULT_SELECTOR,
    context: Context = None,
) -> None:
    """Replica lag in bytes and seconds: 0 OK, 1 WARNING, 2 CRITICAL (lagging, down, cut off), 3 UNKNOWN."""
    warn_b, crit_b = _size(warn_lag_bytes, "--warn-lag-bytes"), _size(crit_lag_bytes, "--crit-lag-bytes")
    if warn_b is not None and crit_b is not None and warn_b > crit_b:
        raise typer.BadParameter("must not be larger than --crit-lag-bytes", param_hint="--warn-lag-bytes")
    if warn_lag_seconds is not None and crit_lag_seconds is not None and warn_lag_seconds > crit_lag_seconds:
        raise typer.BadParameter("must not be larger than --crit-lag-seconds", param_hint="--warn-lag-seconds")
    limits: dict[str, Any] = {
        "warn_bytes": warn_b,
        "crit_bytes": crit_b,
        "warn_seconds": warn_lag_seconds,
        "crit_seconds": crit_lag_seconds,
        "replica": replica,
    }
    if kube:
        target = KubeTarget(namespace, selector, context, timeout)
        code, results = across_pods(dict(discover(target)), lambda c: replicas_cmd.fetch(c, **limits))
        if output == CheckOutput.nagios:
            print(replicas_cmd.nagios_across_pods(code, results))
        else:
            emit_across_pods(results, output.value, replicas_cmd.replicas_table)
        _finish(code)
    client = _client(url, token, timeout)
    try:
        code = replicas_cmd.run(client, output.value, **limits)
    finally:
        client.close()
    _finish(code)


@app.command("pool-stats")
def pool_stats(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw live from /pools/stream until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.1, max=60, help="Seconds between redraws with --watch.")] = 1.0,
    frames: Annotated[int | None, typer.Option(min=1, hidden=True, help="Stop --watch after N redraws.")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
    kube: Kube = False,
    namespace: Namespace = None,
    selector: Selector = DEFAULT_SELECTOR,
    context: Context = None,
) -> None:
    """Pool statistics (PgBouncer SHOW POOLS style): 0 all ready, 1 a replica pool not, 2 the primary not."""
    if kube:
        if watch:
            raise typer.BadParameter("--watch cannot be combined with --kube", param_hint="--watch")
        target = KubeTarget(namespace, selector, context, timeout)
        _finish(_across_pods(target, pools_cmd.fetch_and_judge, output.value, pools_cmd.pools_table))
    client = _client(url, token, timeout)
    try:
        if watch:
            code = pools_cmd.watch(client, output.value, interval, frames)
        else:
            code = pools_cmd.run(client, output.value)
    finally:
        client.close()
    _finish(code)


jobs_app = typer.Typer(help="Transfer-batch jobs: submit a CSV, follow, list, cancel.", no_args_is_help=True)
db_app = typer.Typer(help="The sidecar's own schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Demo and maintenance data.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")


def _run(url: str, token: str | None, timeout: float, action: Any) -> None:
    """Create the client, run ``action(client)``, close, and exit with its code."""
    client = _client(url, token, timeout)
    try:
        code = action(client)
    finally:
        client.close()
    _finish(code)


@app.command()
def transfer(
    from_account: Annotated[int, typer.Option("--from", min=1, help="Account to debit.")],
    to_account: Annotated[int, typer.Option("--to", min=1, help="Account to credit.")],
    amount: Annotated[str, typer.Option(help='Decimal amount, at most 2 decimals, e.g. "10.50".')],
    idempotency_key: Annotated[
        str | None, typer.Option(help="Applies the transfer at most once; generated (and printed) when absent.")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """Move money between two accounts exactly once: 0 applied, 2 refused (reason printed), 3 unknown."""
    _run(
        url,
        token,
        timeout,
        lambda c: admin_cmd.transfer(c, output.value, from_account, to_account, amount, idempotency_key),
    )


@db_app.command("migrate")
def db_migrate(
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=3600, help="Seconds to wait for the sidecar.")
    ] = 60.0,
    output: OutputOpt = Output.table,
) -> None:
    """Create or upgrade the sidecar's schema (idempotent)."""
    _run(url, token, timeout, lambda c: admin_cmd.migrate(c, output.value))


@jobs_app.command("submit")
def jobs_submit(
    file: Annotated[Path, typer.Argument(help="CSV: from_account,to_account,amount[,idempotency_key]; - for stdin.")],
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Transfers per transaction.")] = 100,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report without moving money.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar until it ends.")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """Submit a transfer-batch job. With --wait: 0 succeeded, 1 some items failed, 2 job failed/cancelled."""
    _run(url, token, timeout, lambda c: admin_cmd.submit(c, output.value, file, batch_size, dry_run, wait))


@jobs_app.command("status")
def jobs_status(
    job_id: Annotated[int, typer.Argument(min=1)],
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """A job's status and progress: 0 running/succeeded, 1 succeeded with failed items, 2 failed/cancelled."""
    _run(url, token, timeout, lambda c: admin_cmd.status(c, output.value, job_id))


@jobs_app.command("list")
def jobs_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent jobs.")] = 20,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """Recent jobs, newest first."""
    _run(url, token, timeout, lambda c: admin_cmd.list_jobs(c, output.value, limit))


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[int, typer.Argument(min=1)],
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """Cancel a queued or running job (applied items stay applied): 0 cancelled, 2 refused."""
    _run(url, token, timeout, lambda c: admin_cmd.cancel(c, output.value, job_id))


@accounts_app.command("seed")
def accounts_seed(
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many accounts.")],
    balance: Annotated[str, typer.Option(help='Starting balance of each, e.g. "1000.00".')],
    start: Annotated[int, typer.Option(min=1, help="First account id.")] = 1,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """Create accounts start..start+count-1 (existing ones are left as they are)."""
    _run(url, token, timeout, lambda c: admin_cmd.seed(c, output.value, count, balance, start))


@accounts_app.command("show")
def accounts_show(
    account_id: Annotated[int, typer.Argument(min=1)],
    primary: Annotated[bool, typer.Option("--primary", help="Read from the primary (read-your-writes).")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.table,
) -> None:
    """An account's balance (from a replica unless --primary)."""
    _run(
        url, token, timeout, lambda c: admin_cmd.show(c, output.value, account_id, "primary" if primary else "replica")
    )


def main() -> None:
    """Entry point of ``fasterdb-admin``."""
    app()
