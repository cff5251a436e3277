"""Router: /transfers — move money exactly once per idempotency key (bearer token required)."""

from __future__ import annotations

from FasterAPI import Response

from fasterdb.contract import TransferBody, TransferRequest
from fasterdb.errors import ServiceError, Unprocessable

from ..http.api import Api, Call, Operation, Reply, json_reply
from ..ledger.ledger import Ledger
from ..ledger.money import MoneyError, amount_from_json, transfer_request

TRANSFER = Operation(
    "POST",
    "/transfers",
    "transfer",
    "Move money between two accounts, exactly once per idempotency key",
    "transfers",
    (
        Reply(200, "applied (or a repeat of an applied key: duplicate true)", TransferBody),
        Reply(404, "account_not_found"),
        Reply(409, "insufficient_funds, or idempotency_conflict (the key was used for another transfer)"),
        Reply(
            503,
            "database_unavailable: the primary is unavailable or did not answer in time (nothing was applied, "
            "unless the message says an attempt's answer was lost); split_brain: two servers "
            "accept writes, money does not move; not_replicated: committed but no standby confirmed it in time. "
            "Always safe to retry with the same key",
        ),
    ),
    body=TransferRequest,
    invalid_code="invalid_transfer",
    example={"from_account": 1, "to_account": 2, "amount": "10.50", "idempotency_key": "invoice-2026-0001"},
    admin=True,
)


def register(api: Api, ledger: Ledger) -> None:
    """POST /transfers."""

    def count_invalid() -> None:
        ledger.counts["invalid"] += 1

    @api.route(TRANSFER, on_invalid=count_invalid)
    async def transfer(call: Call) -> Response:
        """One transaction on the primary; a 503 is always safe to retry with the same key."""
        body: TransferRequest = call.body
        try:
            request = transfer_request(
                body.from_account, body.to_account, amount_from_json(body.amount), body.idempotency_key
            )
        except MoneyError as exc:
            raise Unprocessable(str(exc), code="invalid_transfer") from None
        outcome = await ledger.transfer(request)
        if outcome.transfer_id is None:  # the ledger sets it for every applied or duplicate transfer
            raise ServiceError("the ledger applied a transfer without an id")
        return json_reply(
            TransferBody(
                transfer_id=outcome.transfer_id,
                status="applied",
                duplicate=outcome.status == "duplicate",
                from_account=request.from_account,
                to_account=request.to_account,
                amount=str(request.amount),
                from_balance=str(outcome.from_balance),
                to_balance=str(outcome.to_balance),
                idempotency_key=request.idempotency_key,
            )
        )
