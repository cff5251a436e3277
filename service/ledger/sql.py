"""SQL of the ledger: accounts, the transfers table, and the statements a batch of transfers needs.

The rules that decide what a batch does (duplicates, conflicts, missing accounts, overdrafts) are
in ``ledger.transfers``; every statement here runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fasterdb.pools.managed import Connection

from ..db.migrations import qualified


async def existing_transfers(conn: Connection, schema: str, keys: list[str]) -> dict[str, Any]:
    """The transfers already recorded under any of ``keys``, by key."""
    rows = await conn.fetch(
        f"SELECT id, idempotency_key, from_account, to_account, amount, from_balance_after,"
        f" to_balance_after FROM {qualified(schema)}.transfers WHERE idempotency_key = ANY($1::text[])",
        keys,
    )
    return {r["idempotency_key"]: r for r in rows}


async def lock_accounts(conn: Connection, schema: str, ids: list[int]) -> dict[int, Decimal]:
    """Lock the accounts ``ids`` in ascending id order (no deadlocks by construction); their balances."""
    rows = await conn.fetch(
        f"SELECT id, balance FROM {qualified(schema)}.accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
        sorted(ids),
    )
    return {r["id"]: r["balance"] for r in rows}


async def insert_transfers(
    conn: Connection, schema: str, rows: Sequence[tuple[str, int, int, Decimal, Decimal, Decimal]], job_id: int | None
) -> dict[str, int]:
    """Insert (key, from, to, amount, from balance after, to balance after) rows; the new ids by key.

    A key inserted concurrently is skipped (ON CONFLICT DO NOTHING): fewer ids than rows means a
    race was lost and the caller's transaction must run again.
    """
    inserted = await conn.fetch(
        f"INSERT INTO {qualified(schema)}.transfers (idempotency_key, from_account, to_account, amount,"
        " from_balance_after, to_balance_after, job_id)"
        " SELECT k, f, t, a, fb, tb, $7 FROM unnest($1::text[], $2::bigint[], $3::bigint[],"
        " $4::numeric[], $5::numeric[], $6::numeric[]) AS u(k, f, t, a, fb, tb)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
        *([row[i] for row in rows] for i in range(6)),
        job_id,
    )
    return {r["idempotency_key"]: r["id"] for r in inserted}


async def set_balances(conn: Connection, schema: str, balances: dict[int, Decimal]) -> None:
    """Write the accounts' new balances in one statement."""
    ids = sorted(balances)
    await conn.execute(
        f"UPDATE {qualified(schema)}.accounts AS a SET balance = u.balance"
        " FROM unnest($1::bigint[], $2::numeric[]) AS u(id, balance) WHERE a.id = u.id",
        ids,
        [balances[i] for i in ids],
    )


async def create_account(conn: Connection, schema: str, account_id: int, balance: Decimal) -> bool:
    """Insert an account; False when the id exists already."""
    row = await conn.fetchrow(
        f"INSERT INTO {qualified(schema)}.accounts (id, balance) VALUES ($1, $2)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        account_id,
        balance,
    )
    return row is not None


async def seed_accounts(conn: Connection, schema: str, first: int, last: int, balance: Decimal) -> int:
    """Insert accounts first..last that do not exist yet; returns how many were created."""
    created: int = await conn.fetchval(
        f"WITH created AS (INSERT INTO {qualified(schema)}.accounts (id, balance)"
        " SELECT g, $3 FROM generate_series($1::bigint, $2::bigint) g"
        " ON CONFLICT (id) DO NOTHING RETURNING 1) SELECT count(*) FROM created",
        first,
        last,
        balance,
    )
    return created


async def get_account(conn: Connection, schema: str, account_id: int) -> Decimal | None:
    """An account's balance, or None when it does not exist."""
    value: Decimal | None = await conn.fetchval(
        f"SELECT balance FROM {qualified(schema)}.accounts WHERE id = $1", account_id
    )
    return value
