"""``fasterdb-admin accounts …``: demo and maintenance data."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fasterdb.contract import SEED_MAX

from ..client import CliError, SidecarClient
from ..exitcodes import Exit
from ..options import AdminCommand, positive_id, target
from ..output import emit, make_table

app = typer.Typer(help="Demo and maintenance data.", no_args_is_help=True)


def send_seed(client: SidecarClient, output: str, count: int, balance: str, start: int) -> Exit:
    """Create accounts start..start+count-1 with ``balance``, SEED_MAX per request, with a progress bar.

    Existing accounts are counted, not changed. Ctrl-C says how far it got and how to go on.
    """
    created = existing = 0
    last = start + count - 1
    columns = (TextColumn("seeding accounts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    show = sys.stderr.isatty() and output == "table"
    next_id = start
    try:
        with Progress(*columns, console=Console(stderr=True), disable=not show, transient=True) as bar:
            task = bar.add_task("seed", total=count)
            while next_id <= last:
                size = min(SEED_MAX, last - next_id + 1)
                body = {"start": next_id, "count": size, "balance": balance}
                reply = client.request("POST", "/accounts/seed", json_body=body, auth="required")
                done = reply.expect("seeding accounts")
                created, existing = created + done["created"], existing + done["existing"]
                next_id += size
                bar.update(task, completed=next_id - start)
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted: {created} accounts created, {existing} existed already (ids {start}-{next_id - 1}); "
            f"continue with --start {next_id} --count {last - next_id + 1}"
        ) from None
    body_out = {"created": created, "existing": existing, "first_id": start, "last_id": last}
    emit(
        body_out,
        output,
        lambda b: (
            f"created {b['created']} accounts, {b['existing']} existed already (ids {b['first_id']}-{b['last_id']})"
        ),
    )
    return Exit.OK


def send_show(client: SidecarClient, output: str, account_id: int, source: str) -> Exit:
    """GET /accounts/{id}."""
    reply = client.request("GET", f"/accounts/{account_id}", params={"source": source}, auth="required")
    body = reply.expect("account")
    emit(
        body,
        output,
        lambda b: make_table(None, ["account", "balance", "read from"], [[b["id"], b["balance"], b.get("source")]]),
    )
    return Exit.OK


@app.command("seed", cls=AdminCommand)
def seed(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(min=1, max=1_000_000, metavar="N", help="How many accounts.")],
    balance: Annotated[str, typer.Option(metavar="DECIMAL", help='Starting balance of each, e.g. "1000.00".')],
    start: Annotated[int, typer.Option(min=1, metavar="ID", help="First account id.")] = 1,
) -> Exit:
    """Create accounts start..start+count-1 in bulk (existing ones are left as they are).

    Sends 10,000 accounts per request (one transaction each) with a progress bar; Ctrl-C says how
    many were created and how to continue.

    \b
    Example:
      fasterdb-admin accounts seed --count 300000 --balance 100.00
    """
    chosen = target(ctx)
    with chosen.client() as client:
        return send_seed(client, chosen.output, count, balance, start)


@app.command("show", cls=AdminCommand)
def show(
    ctx: typer.Context,
    account_id: Annotated[int, typer.Argument(metavar="ID", callback=positive_id, help="The id.")],
    primary: Annotated[bool, typer.Option("--primary", help="Read from the primary (read-your-writes).")] = False,
) -> Exit:
    """An account's balance (from a replica unless --primary).

    \b
    Example:
      fasterdb-admin accounts show 42 --primary
    """
    chosen = target(ctx)
    with chosen.client() as client:
        return send_show(client, chosen.output, account_id, "primary" if primary else "replica")
