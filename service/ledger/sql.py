"""SQL of the ledger: accounts and exactly-once transfers, one or many per transaction.

``apply_transfers`` is the single implementation behind POST /transfers (one item) and the job
worker (a batch). Inside the caller's transaction it

1. reads which idempotency keys already exist (a repeat is a duplicate, or a conflict when its
   parameters differ),
2. locks every account of the batch with ``SELECT … ORDER BY id FOR UPDATE`` — one statement, in
   ascending id order, so two transactions never wait on each other in a cycle (no deadlocks by
   construction),
3. decides every item in memory against the locked balances (missing account, insufficient funds:
   the item fails, nothing is written for it, its neighbours are unaffected),
4. writes the ledger rows (``ON CONFLICT (idempotency_key) DO NOTHING``) and the new balances in
   two set-based statements. If a concurrent writer inserted one of our keys in between, the
   whole transaction is retried, and the retry sees it as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fasterdb.pools.managed import Connection
from fasterdb.pools.transactions import RetryTransaction

from ..db.migrations import qualified
from .money import TransferRequest


@dataclass
class Outcome:
    """What happened to one transfer."""

    request: TransferRequest
    status: str  # applied | duplicate | failed | validated (dry run)
    code: str | None = None  # failed: account_not_found | insufficient_funds | idempotency_conflict
    message: str | None = None
    transfer_id: int | None = None
    from_balance: Decimal | None = None
    to_balance: Decimal | None = None


async def apply_transfers(
    conn: Connection,
    schema: str,
    items: list[TransferRequest],
    *,
    job_id: int | None = None,
    dry_run: bool = False,
) -> list[Outcome]:
    """Apply ``items`` in order, each exactly once per idempotency key (see the module docstring)."""
    s = qualified(schema)
    keys = [item.idempotency_key for item in items]
    existing = {
        r["idempotency_key"]: r
        for r in await conn.fetch(
            f"SELECT id, idempotency_key, from_account, to_account, amount, from_balance_after,"
            f" to_balance_after FROM {s}.transfers WHERE idempotency_key = ANY($1::text[])",
            keys,
        )
    }
    ids = sorted({item.from_account for item in items} | {item.to_account for item in items})
    balances: dict[int, Decimal] = {
        r["id"]: r["balance"]
        for r in await conn.fetch(
            f"SELECT id, balance FROM {s}.accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", ids
        )
    }
    outcomes: list[Outcome] = []
    fresh: dict[str, Outcome] = {}
    for item in items:
        key = item.idempotency_key
        if key in existing or key in fresh:
            if key in existing:
                row = existing[key]
                params = (row["from_account"], row["to_account"], row["amount"])
                dup = Outcome(
                    item,
                    "duplicate",
                    transfer_id=row["id"],
                    from_balance=row["from_balance_after"],
                    to_balance=row["to_balance_after"],
                )
            else:  # the same key twice in one batch
                first = fresh[key]
                params = (first.request.from_account, first.request.to_account, first.request.amount)
                dup = Outcome(item, "duplicate", from_balance=first.from_balance, to_balance=first.to_balance)
            if params != (item.from_account, item.to_account, item.amount):
                dup = Outcome(
                    item,
                    "failed",
                    "idempotency_conflict",
                    "this idempotency_key was already used for a different transfer",
                )
            outcomes.append(dup)
            continue
        missing = [a for a in (item.from_account, item.to_account) if a not in balances]
        if missing:
            outcomes.append(Outcome(item, "failed", "account_not_found", f"account {missing[0]} does not exist"))
            continue
        if balances[item.from_account] < item.amount:
            outcomes.append(
                Outcome(
                    item,
                    "failed",
                    "insufficient_funds",
                    f"account {item.from_account} has insufficient funds for {item.amount}",
                )
            )
            continue
        balances[item.from_account] -= item.amount
        balances[item.to_account] += item.amount
        outcome = Outcome(
            item,
            "validated" if dry_run else "applied",
            from_balance=balances[item.from_account],
            to_balance=balances[item.to_account],
        )
        fresh[key] = outcome
        outcomes.append(outcome)
    if dry_run:
        return outcomes

    applied = [o for o in outcomes if o.status == "applied"]
    if applied:
        rows = await conn.fetch(
            f"INSERT INTO {s}.transfers (idempotency_key, from_account, to_account, amount,"
            " from_balance_after, to_balance_after, job_id)"
            " SELECT k, f, t, a, fb, tb, $7 FROM unnest($1::text[], $2::bigint[], $3::bigint[],"
            " $4::numeric[], $5::numeric[], $6::numeric[]) AS u(k, f, t, a, fb, tb)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
            [o.request.idempotency_key for o in applied],
            [o.request.from_account for o in applied],
            [o.request.to_account for o in applied],
            [o.request.amount for o in applied],
            [o.from_balance for o in applied],
            [o.to_balance for o in applied],
            job_id,
        )
        if len(rows) != len(applied):
            raise RetryTransaction("a concurrent transfer used one of these idempotency keys")
        new_ids = {r["idempotency_key"]: r["id"] for r in rows}
        for o in outcomes:
            if o.status in ("applied", "duplicate") and o.transfer_id is None:
                o.transfer_id = new_ids.get(o.request.idempotency_key)
        touched = sorted({o.request.from_account for o in applied} | {o.request.to_account for o in applied})
        await conn.execute(
            f"UPDATE {s}.accounts AS a SET balance = u.balance"
            " FROM unnest($1::bigint[], $2::numeric[]) AS u(id, balance) WHERE a.id = u.id",
            touched,
            [balances[i] for i in touched],
        )
    return outcomes


async def create_account(conn: Connection, schema: str, account_id: int, balance: Decimal) -> bool:
    """Insert an account; False when the id exists already."""
    s = qualified(schema)
    row = await conn.fetchrow(
        f"INSERT INTO {s}.accounts (id, balance) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id",
        account_id,
        balance,
    )
    return row is not None


async def seed_accounts(conn: Connection, schema: str, start: int, count: int, balance: Decimal) -> int:
    """Insert accounts start..start+count-1 that do not exist yet; returns how many were created."""
    s = qualified(schema)
    created: int = await conn.fetchval(
        f"WITH created AS (INSERT INTO {s}.accounts (id, balance)"
        " SELECT g, $3 FROM generate_series($1::bigint, $1::bigint + $2 - 1) g"
        " ON CONFLICT (id) DO NOTHING RETURNING 1) SELECT count(*) FROM created",
        start,
        count,
        balance,
    )
    return created


async def get_account(conn: Connection, schema: str, account_id: int) -> Decimal | None:
    """An account's balance, or None when it does not exist."""
    value: Decimal | None = await conn.fetchval(
        f"SELECT balance FROM {qualified(schema)}.accounts WHERE id = $1", account_id
    )
    return value
