"""Router: /accounts — open an account, read a balance (bearer token required)."""

from __future__ import annotations

from FasterAPI import Response

from service.errors import Unprocessable
from service.http.api import Api, Call, Operation, Reply, json_reply
from service.http.params import Param, choice, integer
from service.ledger import Ledger
from service.money import MoneyError, amount_from_json, validate_account
from service.schemas import AccountBody, AccountRequest

CREATE = Operation(
    "POST",
    "/accounts",
    "create_account",
    "Open an account with a starting balance",
    "accounts",
    (
        Reply(201, "created", AccountBody),
        Reply(409, "account_exists: an account with this id exists"),
        Reply(503, "the primary is unavailable"),
    ),
    body=AccountRequest,
    invalid_code="invalid_account",
    example={"id": 1001, "balance": "250.00"},
    admin=True,
)
GET = Operation(
    "GET",
    "/accounts/{account_id}",
    "get_account",
    "An account's balance, read from a replica unless ?source=primary",
    "accounts",
    (
        Reply(200, "the account; source names the pool that read it", AccountBody),
        Reply(404, "account_not_found"),
        Reply(503, "no pool could read it"),
    ),
    params=(
        Param(
            "account_id",
            "path",
            {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
            "the account id",
            integer(1),
            required=True,
        ),
        Param(
            "source",
            "query",
            {"type": "string", "enum": ["replica", "primary"]},
            "replica (default; may lag) or primary (read-your-writes)",
            choice("replica", "primary"),
            "replica",
        ),
    ),
    admin=True,
)


def register(api: Api, ledger: Ledger) -> None:
    """POST /accounts, GET /accounts/{account_id}."""

    @api.route(CREATE)
    async def create(call: Call) -> Response:
        """201 with the account; 409 when the id exists."""
        body: AccountRequest = call.body
        try:
            account_id, balance = validate_account(
                body.id, amount_from_json(body.balance, what="balance", allow_zero=True)
            )
        except MoneyError as exc:
            raise Unprocessable(str(exc), code="invalid_account") from None
        await ledger.create_account(account_id, balance)
        return json_reply(AccountBody(account_id, str(balance)), 201)

    @api.route(GET)
    async def get(call: Call) -> Response:
        """The balance; ``source`` in the answer names the pool that served it."""
        account_id = call.params["account_id"]
        balance, source = await ledger.account(account_id, call.params["source"])
        return json_reply(AccountBody(account_id, str(balance), source))
