"""``fasterdb-admin transfer``: move money between two accounts exactly once per idempotency key."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
import typer

from fasterdb.contract import TransferBody

from ..client import CliError, NotSent, SidecarClient
from ..exitcodes import Exit
from ..options import target
from ..output import emit, make_table


def send_transfer(client: SidecarClient, output: str, src: int, dst: int, amount: str, key: str | None) -> Exit:
    """POST /transfers. Where the outcome is unknown or a retry can succeed (unreachable, 503), the
    error names the idempotency key to retry with; a refusal (no funds, no account) says only why."""
    if key is None:
        key = f"cli-{uuid.uuid4()}"
    payload = {"from_account": src, "to_account": dst, "amount": amount, "idempotency_key": key}
    try:
        reply = client.request("POST", "/transfers", json_body=payload, auth="required")
    except NotSent:
        raise  # nothing reached the sidecar: nothing to retry with a key
    except CliError as exc:
        raise CliError(
            f"{exc.message}; the transfer may or may not have been applied: retry with --idempotency-key {key}",
            exc.code,
        ) from None
    if reply.status == 503:
        raise CliError(
            f"transfer not applied: {reply.error_message}; retrying is safe: --idempotency-key {key}", Exit.CRITICAL
        )
    reply.expect("transfer")  # refused for a reason a retry cannot change: no retry advice
    body = msgspec.to_builtins(reply.decode(TransferBody))

    def table(b: dict[str, Any]) -> Any:
        note = " (already applied earlier with this key)" if b.get("duplicate") else ""
        return make_table(
            f"transfer {b['transfer_id']}{note}",
            ["from", "to", "amount", "from balance", "to balance", "key"],
            [[b["from_account"], b["to_account"], b["amount"], b["from_balance"], b["to_balance"], key]],
        )

    emit(body, output, table)
    return Exit.OK


def transfer(
    ctx: typer.Context,
    from_account: Annotated[int, typer.Option("--from", min=1, metavar="ID", help="Account to debit.")],
    to_account: Annotated[int, typer.Option("--to", min=1, metavar="ID", help="Account to credit.")],
    amount: Annotated[str, typer.Option(metavar="DECIMAL", help='Decimal amount, at most 2 decimals, e.g. "10.50".')],
    idempotency_key: Annotated[
        str | None,
        typer.Option(metavar="KEY", help="Applies the transfer at most once; generated (and printed) when absent."),
    ] = None,
) -> Exit:
    """Move money between two accounts exactly once: 0 applied, 2 refused (reason printed), 3 unknown.

    The idempotency key (generated when absent) is in the output; when the outcome is unknown the
    error says how to retry with it, safely.

    \b
    Example:
      fasterdb-admin transfer --from 1 --to 2 --amount 10.50 --idempotency-key invoice-4711
    """
    chosen = target(ctx)
    with chosen.client() as client:
        return send_transfer(client, chosen.output, from_account, to_account, amount, idempotency_key)
