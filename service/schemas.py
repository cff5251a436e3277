"""The HTTP contract's typed bodies (msgspec Structs), shared by the sidecar and the CLI."""

from __future__ import annotations

from decimal import Decimal

import msgspec


class TransferBody(msgspec.Struct):
    """The JSON body of POST /transfers (amount as a decimal string, or a JSON number)."""

    from_account: int
    to_account: int
    amount: Decimal
    idempotency_key: str


class AccountBody(msgspec.Struct):
    """The JSON body of POST /accounts."""

    id: int
    balance: Decimal


class JobItemBody(msgspec.Struct):
    """One transfer of a job (the key is optional: the sidecar derives one per item)."""

    from_account: int
    to_account: int
    amount: Decimal
    idempotency_key: str | None = None


class JobBody(msgspec.Struct):
    """The JSON body of POST /jobs."""

    kind: str
    items: list[JobItemBody]
    batch_size: int = 100
    dry_run: bool = False
