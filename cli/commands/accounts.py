"""``fasterdb-admin accounts …``: demo and maintenance data."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.client import SidecarClient
from cli.commands.admin import require_ok
from cli.exitcodes import Exit
from cli.options import Target, sidecar_options
from cli.output import emit, make_table

app = typer.Typer(help="Demo and maintenance data.", no_args_is_help=True)


def send_seed(client: SidecarClient, output: str, count: int, balance: str, start: int) -> Exit:
    """Create accounts start..start+count-1 with ``balance``; existing ones are counted, not changed."""
    created = existing = 0
    for account_id in range(start, start + count):
        reply = client.request("POST", "/accounts", json_body={"id": account_id, "balance": balance}, admin=True)
        if reply.status == 409:
            existing += 1
            continue
        require_ok(reply, f"account {account_id}", ok=(201,))
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


def send_show(client: SidecarClient, output: str, account_id: int, source: str) -> Exit:
    """GET /accounts/{id}."""
    body = require_ok(
        client.request("GET", f"/accounts/{account_id}", params={"source": source}, admin=True), "account"
    )
    emit(
        body,
        output,
        lambda b: make_table(None, ["account", "balance", "read from"], [[b["id"], b["balance"], b.get("source")]]),
    )
    return Exit.OK


@app.command("seed")
@sidecar_options(token=True)
def seed(
    target: Target,
    count: Annotated[int, typer.Option(min=1, max=1_000_000, metavar="N", help="How many accounts.")],
    balance: Annotated[str, typer.Option(metavar="DECIMAL", help='Starting balance of each, e.g. "1000.00".')],
    start: Annotated[int, typer.Option(min=1, metavar="ID", help="First account id.")] = 1,
) -> Exit:
    """Create accounts start..start+count-1 (existing ones are left as they are)."""
    client = target.client()
    try:
        return send_seed(client, target.output, count, balance, start)
    finally:
        client.close()


@app.command("show")
@sidecar_options(token=True)
def show(
    target: Target,
    account_id: Annotated[int, typer.Argument(min=1, metavar="ID")],
    primary: Annotated[bool, typer.Option("--primary", help="Read from the primary (read-your-writes).")] = False,
) -> Exit:
    """An account's balance (from a replica unless --primary)."""
    client = target.client()
    try:
        return send_show(client, target.output, account_id, "primary" if primary else "replica")
    finally:
        client.close()
