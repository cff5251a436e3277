"""Router: admin endpoints /admin/migrate, /accounts, /transfers (bearer token required)."""

from __future__ import annotations

from FasterAPI import FasterRouter, JSONResponse, Query, Request

from service.auth import ADMIN_SECURITY, AdminAuth
from service.errors import ERROR_SCHEMA, BadRequest, Unprocessable, error_responses, json_content
from service.http import json_response, parse_body, path_int, query_doc
from service.ledger import Ledger
from service.money import AccountBody, TransferBody, validate_account, validate_transfer

BODY_LIMIT = 64 * 1024
_MONEY = {
    "type": "string",
    "pattern": r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,14}(\.[0-9]{1,2})?)$",
    "example": "10.50",
}
_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
_TRANSFER_IN = {
    "type": "object",
    "required": ["from_account", "to_account", "amount", "idempotency_key"],
    "properties": {
        "from_account": _ID,
        "to_account": _ID,
        "amount": _MONEY,
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}
_TRANSFER_OUT = {
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
_ACCOUNT = {
    "type": "object",
    "required": ["id", "balance"],
    "properties": {"id": {"type": "integer"}, "balance": {"type": "string"}, "source": {"type": "string"}},
}


def admin_router(auth: AdminAuth, ledger: Ledger) -> FasterRouter:
    """Migrations, accounts and transfers; every handler checks the bearer token first."""
    router = FasterRouter(tags=["admin"])

    @router.post(
        "/admin/migrate",
        summary="Create or upgrade the sidecar's schema (idempotent; safe from several sidecars)",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "responses": {
                "200": {"description": "schema version", "content": json_content({"type": "object"})},
                **error_responses(401, 403, 503),
            },
        },
    )
    async def admin_migrate(request: Request) -> JSONResponse:
        """Apply pending migrations."""
        auth.check(request)
        return json_response(await ledger.migrate())

    @router.post(
        "/accounts",
        summary="Open an account with a starting balance",
        status_code=201,
        openapi_extra={
            "security": ADMIN_SECURITY,
            "requestBody": {
                "required": True,
                "content": json_content(
                    {
                        "type": "object",
                        "required": ["id", "balance"],
                        "properties": {"id": _ID, "balance": _MONEY},
                    }
                ),
            },
            "responses": {
                "201": {"description": "created", "content": json_content(_ACCOUNT)},
                **error_responses(401, 403, 409, 422, 503),
            },
        },
    )
    async def create_account(request: Request) -> JSONResponse:
        """201 with the account; 409 when the id exists."""
        auth.check(request)
        account_id, balance = await parse_body(
            request, AccountBody, validate_account, code="invalid_account", limit=BODY_LIMIT
        )
        return json_response(await ledger.create_account(account_id, balance), 201)

    @router.get(
        "/accounts/{account_id}",
        summary="An account's balance, read from a replica unless ?source=primary",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [
                {"name": "account_id", "in": "path", "required": True, "schema": _ID},
                query_doc(
                    "source",
                    {"type": "string", "enum": ["replica", "primary"]},
                    "replica (default; may lag) or primary (read-your-writes)",
                ),
            ],
            "responses": {
                "200": {"description": "the account", "content": json_content(_ACCOUNT)},
                **error_responses(400, 401, 403, 404, 503),
            },
        },
    )
    async def get_account(request: Request, account_id: str, source: str | None = Query(None)) -> JSONResponse:
        """The balance; ``source`` in the answer names the pool that served it."""
        auth.check(request)
        if source not in (None, "replica", "primary"):
            raise BadRequest("query parameter 'source' must be replica or primary")
        return json_response(await ledger.account(path_int(account_id, "account id"), source or "replica"))

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
                request, TransferBody, validate_transfer, code="invalid_transfer", limit=BODY_LIMIT
            )
        except Unprocessable:
            ledger.counts["invalid"] += 1
            raise
        return json_response(await ledger.transfer(transfer))

    return router
