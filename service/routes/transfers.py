"""Router: /transfers — move money exactly once per idempotency key (bearer token required)."""

from __future__ import annotations

from typing import Any

from FasterAPI import FasterRouter, JSONResponse, Request

from service.auth import ADMIN_SECURITY, AdminAuth
from service.errors import ERROR_SCHEMA, Unprocessable, error_responses, json_content
from service.http import ID_SCHEMA, MONEY_SCHEMA, json_response, parse_body
from service.ledger import Ledger
from service.money import transfer_request
from service.schemas import TransferBody

BODY_LIMIT = 64 * 1024
_TRANSFER_IN: dict[str, Any] = {
    "type": "object",
    "required": ["from_account", "to_account", "amount", "idempotency_key"],
    "properties": {
        "from_account": ID_SCHEMA,
        "to_account": ID_SCHEMA,
        "amount": MONEY_SCHEMA,
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}
_TRANSFER_OUT: dict[str, Any] = {
    "type": "object",
    "required": [
        "transfer_id",
        "status",
        "duplicate",
        "from_account",
        "to_account",
        "amount",
        "from_balance",
        "to_balance",
    ],
    "properties": {
        "transfer_id": {"type": "integer"},
        "status": {"type": "string", "enum": ["applied"]},
        "duplicate": {"type": "boolean"},
        "from_account": {"type": "integer"},
        "to_account": {"type": "integer"},
        "amount": {"type": "string"},
        "from_balance": {"type": "string"},
        "to_balance": {"type": "string"},
        "idempotency_key": {"type": "string"},
    },
}


def transfers_router(auth: AdminAuth, ledger: Ledger) -> FasterRouter:
    """POST /transfers."""
    router = FasterRouter(tags=["transfers"])

    @router.post(
        "/transfers",
        summary="Move money between two accounts, exactly once per idempotency key",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "requestBody": {"required": True, "content": json_content(_TRANSFER_IN)},
            "responses": {
                "200": {
                    "description": "applied (or a repeat of an applied key)",
                    "content": json_content(_TRANSFER_OUT),
                },
                "409": {
                    "description": "insufficient_funds or idempotency_conflict",
                    "content": json_content(ERROR_SCHEMA),
                },
                **error_responses(401, 403, 404, 413, 422, 503),
            },
        },
    )
    async def transfers(request: Request) -> JSONResponse:
        """One transaction on the primary; a 503 is always safe to retry with the same key."""
        auth.check(request)
        try:
            transfer = await parse_body(
                request,
                TransferBody,
                lambda b: transfer_request(b.from_account, b.to_account, b.amount, b.idempotency_key),
                code="invalid_transfer",
                limit=BODY_LIMIT,
            )
        except Unprocessable:
            ledger.counts["invalid"] += 1
            raise
        return json_response(await ledger.transfer(transfer))

    return router
