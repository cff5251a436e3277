"""The maintenance ledger: /admin/migrate, /accounts, /transfers."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from .common import AccountId, Amount, IdempotencyKey, Money
from .vocabulary import SEED_MAX

# -- admin: migrations, accounts, transfers -----------------------------------------------------


class MigrateBody(msgspec.Struct):
    """POST /admin/migrate."""

    schema: str
    version: int
    applied: list[int]


class AccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /accounts."""

    id: AccountId
    balance: Amount


class SeedRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /accounts/seed: open accounts start..start+count-1 with the same balance."""

    start: AccountId
    count: Annotated[int, Meta(ge=1, le=SEED_MAX, description=f"at most {SEED_MAX} per request")]
    balance: Amount


class SeedBody(msgspec.Struct):
    """How many of the accounts were created, and how many existed already (left as they are)."""

    first_id: int
    last_id: int
    created: int
    existing: int


class AccountBody(msgspec.Struct, omit_defaults=True):
    """An account and where its balance was read."""

    id: int
    balance: Money
    source: str | UnsetType = UNSET


class TransferRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /transfers."""

    from_account: AccountId
    to_account: AccountId
    amount: Amount
    idempotency_key: IdempotencyKey


class TransferBody(msgspec.Struct):
    """An applied transfer (``duplicate``: applied earlier with this key)."""

    transfer_id: int
    status: Literal["applied"]
    duplicate: bool
    from_account: int
    to_account: int
    amount: Money
    from_balance: Money
    to_balance: Money
    idempotency_key: str
