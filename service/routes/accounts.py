"""Router: /accounts — open an account, read a balance (bearer token required)."""

from __future__ import annotations

from typing import Any

from FasterAPI import FasterRouter, JSONResponse, Query, Request

from service.auth import ADMIN_SECURITY, AdminAuth
from service.errors import BadRequest, error_responses, json_content
from service.http import ID_SCHEMA, MONEY_SCHEMA, json_response, parse_body, path_int, query_doc
from service.ledger import Ledger
from service.money import validate_account
from service.schemas import AccountBody

BODY_LIMIT = 64 * 1024
_ACCOUNT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "balance"],
    "properties": {"id": {"type": "integer"}, "balance": {"type": "string"}, "source": {"type": "string"}},
}


def accounts_router(auth: AdminAuth, ledger: Ledger) -> FasterRouter:
    """POST /accounts, GET /accounts/{id}."""
    router = FasterRouter(tags=["accounts"])

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
                        "properties": {"id": ID_SCHEMA, "balance": MONEY_SCHEMA},
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
            request, AccountBody, lambda b: validate_account(b.id, b.balance), code="invalid_account", limit=BODY_LIMIT
        )
        return json_response(await ledger.create_account(account_id, balance), 201)

    @router.get(
        "/accounts/{account_id}",
        summary="An account's balance, read from a replica unless ?source=primary",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "parameters": [
                {"name": "account_id", "in": "path", "required": True, "schema": ID_SCHEMA},
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

    return router
