"""SQL of the ledger: accounts, the transfers table, and the statements a batch of transfers needs.

The rules that decide what a batch does (duplicates, conflicts, missing accounts, overdrafts) are
in ``ledger.transfers``; every statement here runs inside the caller's transaction, except
``transfer_one``, which is a whole transfer in one statement (its own implicit transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from fasterdb.pools.managed import Connection

from ..db.migrations import qualified


async def lock_and_find(
    conn: Connection, schema: str, ids: list[int], keys: list[str]
) -> tuple[dict[int, Decimal], dict[str, Any]]:
    """One statement: lock the accounts ``ids`` in ascending id order (no deadlocks by construction)
    and read their balances, and find the transfers already recorded under any of ``keys``."""
    s = qualified(schema)
    rows = await conn.fetch(
        f"WITH locked AS (SELECT id, balance FROM {s}.accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE)"
        " SELECT NULL::text AS idempotency_key, id, NULL::bigint AS from_account, NULL::bigint AS to_account,"
        " NULL::numeric AS amount, NULL::numeric AS from_balance_after, NULL::numeric AS to_balance_after, balance"
        " FROM locked"
        " UNION ALL"
        " SELECT idempotency_key, id, from_account, to_account, amount, from_balance_after, to_balance_after, NULL"
        f" FROM {s}.transfers WHERE idempotency_key = ANY($2::text[])",
        sorted(ids),
        keys,
    )
    balances = {r["id"]: r["balance"] for r in rows if r["idempotency_key"] is None}
    return balances, {r["idempotency_key"]: r for r in rows if r["idempotency_key"] is not None}


async def record(
    conn: Connection,
    schema: str,
    rows: Sequence[tuple[str, int, int, Decimal, Decimal, Decimal]],
    job_id: int | None,
    balances: dict[int, Decimal],
) -> dict[str, int]:
    """One statement: insert the (key, from, to, amount, from balance after, to balance after) rows
    and write the accounts' new ``balances``; the new transfers' ids by key.

    A key inserted concurrently is skipped (ON CONFLICT DO NOTHING): fewer ids than rows means a
    race was lost and the caller's transaction must run again (the balances roll back with it).
    """
    s = qualified(schema)
    ids = sorted(balances)
    inserted = await conn.fetch(
        f"WITH ins AS (INSERT INTO {s}.transfers (idempotency_key, from_account, to_account, amount,"
        " from_balance_after, to_balance_after, job_id)"
        " SELECT k, f, t, a, fb, tb, $7 FROM unnest($1::text[], $2::bigint[], $3::bigint[],"
        " $4::numeric[], $5::numeric[], $6::numeric[]) AS u(k, f, t, a, fb, tb)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key),"
        f" upd AS (UPDATE {s}.accounts AS a SET balance = u.balance"
        " FROM unnest($8::bigint[], $9::numeric[]) AS u(id, balance) WHERE a.id = u.id)"
        " SELECT id, idempotency_key FROM ins",
        *([row[i] for row in rows] for i in range(6)),
        job_id,
        ids,
        [balances[i] for i in ids],
    )
    return {r["idempotency_key"]: r["id"] for r in inserted}


async def transfer_one(conn: Connection, schema: str, src: int, dst: int, amount: Decimal, key: str) -> list[Any]:
    """One statement, one round trip, run on its own (autocommit): a single transfer's whole
    transaction. It locks both accounts in ascending id order and reads their balances (the
    latest committed ones: READ COMMITTED re-reads a row changed while it waited for the lock),
    looks the key up, and — only when the key is new, both accounts exist and ``src`` covers
    ``amount`` — inserts the ledger row and writes both new balances.

    Rows, by ``tag``: ``prior`` (the key's recorded transfer), ``applied`` (the new transfer's id
    and balances), ``balances`` (always: both locked balances, NULL for a missing account). The
    caller decides with the same rules as a batch (``ledger.transfers``). A key inserted
    concurrently makes the insert do nothing: no ``prior``, no ``applied`` though the balances
    allow it — the race was lost and the statement must run again (it then finds the key).
    """
    s = qualified(schema)
    rows: list[Any] = await conn.fetch(
        f"WITH locked AS (SELECT id, balance FROM {s}.accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE),"
        " b AS (SELECT (SELECT balance FROM locked WHERE id = $1) AS src,"
        " (SELECT balance FROM locked WHERE id = $2) AS dst),"
        " prior AS (SELECT id, from_account, to_account, amount, from_balance_after, to_balance_after"
        f" FROM {s}.transfers WHERE idempotency_key = $4),"
        f" ins AS (INSERT INTO {s}.transfers (idempotency_key, from_account, to_account, amount,"
        " from_balance_after, to_balance_after)"
        " SELECT $4, $1, $2, $3, b.src - $3, b.dst + $3 FROM b"
        " WHERE b.src >= $3 AND b.dst IS NOT NULL AND NOT EXISTS (SELECT FROM prior)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, from_balance_after, to_balance_after),"
        f" upd AS (UPDATE {s}.accounts AS a"
        " SET balance = CASE WHEN a.id = $1 THEN ins.from_balance_after ELSE ins.to_balance_after END"
        " FROM ins WHERE a.id IN ($1, $2))"
        " SELECT 'prior' AS tag, id, from_account, to_account, amount, from_balance_after, to_balance_after FROM prior"
        " UNION ALL SELECT 'applied', id, NULL, NULL, NULL, from_balance_after, to_balance_after FROM ins"
        " UNION ALL SELECT 'balances', NULL, NULL, NULL, NULL, src, dst FROM b",
        src,
        dst,
        amount,
        key,
    )
    return rows


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
