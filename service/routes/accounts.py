"""Router: /accounts — open an account, read a balance (bearer token required)."""

from __future__ import annotations

from FasterAPI import Response

from fasterdb.contract import SEED_MAX, AccountBody, AccountRequest, SeedBody, SeedRequest
from fasterdb.errors import Unprocessable

from ..http.api import Api, Call, Operation, Reply, json_reply
from ..http.params import Param, choice, integer
from ..ledger.ledger import Ledger
from ..ledger.money import MoneyError, amount_from_json, validate_account

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
SEED = Operation(
    "POST",
    "/accounts/seed",
    "seed_accounts",
    f"Open accounts start..start+count-1 (at most {SEED_MAX}) in one transaction; existing ones are left alone",
    "accounts",
    (Reply(200, "how many were created and how many existed", SeedBody), Reply(503, "the primary is unavailable")),
    body=SeedRequest,
    invalid_code="invalid_account",
    example={"start": 1, "count": 1000, "balance": "100.00"},
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
    """POST /accounts, POST /accounts/seed, GET /accounts/{account_id}."""

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

    @api.route(SEED)
    async def seed(call: Call) -> Response:
        """Bulk demo and maintenance data: one INSERT ... SELECT generate_series."""
        body: SeedRequest = call.body
        try:
            balance = amount_from_json(body.balance, what="balance", allow_zero=True)
            last = validate_account(body.start + body.count - 1, balance)[0]
        except MoneyError as exc:
            raise Unprocessable(str(exc), code="invalid_account") from None
        created = await ledger.seed_accounts(body.start, last, balance)
        return json_reply(SeedBody(body.start, last, created, body.count - created))

    @api.route(GET)
    async def get(call: Call) -> Response:
        """The balance; ``source`` in the answer names the pool that served it."""
        account_id = call.params["account_id"]
        balance, source = await ledger.account(account_id, call.params["source"])
        return json_reply(AccountBody(account_id, str(balance), source))
