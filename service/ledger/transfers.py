"""The ledger's rules: a batch of transfers applied exactly once per idempotency key.

``apply_transfers`` is the single implementation behind POST /transfers (one item) and the job
worker (a batch). Inside the caller's transaction it

1. locks every account of the batch in ascending id order, so two transactions never wait on
   each other in a cycle (no deadlocks by construction), and reads which idempotency keys already
   exist (a repeat is a duplicate, or a conflict when its parameters differ) — one statement,
2. decides every item in memory against the locked balances (missing account, insufficient funds:
   the item fails, nothing is written for it, its neighbours are unaffected),
3. writes the ledger rows and the new balances in one set-based statement. If a concurrent
   writer inserted one of our keys in between, the whole transaction is retried, and the retry
   sees it as a duplicate.

With BEGIN and COMMIT that is four round trips per transaction, whatever the batch's size.

``apply_one`` is the same for a single transfer (POST /transfers) in one statement and one round
trip, run as its own implicit transaction: the statement writes only when the rules below let the
transfer apply, and the outcome is decided from what it returns with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from fasterdb.pools.managed import Connection
from fasterdb.pools.transactions import RetryTransaction

from . import sql
from .money import TransferRequest

Status = Literal["applied", "duplicate", "failed", "validated"]  # validated: a dry run's success


@dataclass
class Outcome:
    """What happened to one transfer."""

    request: TransferRequest
    status: Status
    code: str | None = None  # failed: account_not_found | insufficient_funds | idempotency_conflict
    message: str | None = None
    transfer_id: int | None = None
    from_balance: Decimal | None = None
    to_balance: Decimal | None = None

    @property
    def kind(self) -> str:
        """The outcome's name for counting: its status, or its failure code."""
        return self.code or self.status


CONFLICT = "this idempotency_key was already used for a different transfer"


def _params(request: TransferRequest) -> tuple[int, int, Decimal]:
    return request.from_account, request.to_account, request.amount


def _repeat(item: TransferRequest, seen: Outcome) -> Outcome:
    """``item`` reuses the key of ``seen`` (recorded earlier, or earlier in this batch)."""
    if _params(seen.request) != _params(item):
        return Outcome(item, "failed", "idempotency_conflict", CONFLICT)
    return Outcome(item, "duplicate", None, None, seen.transfer_id, seen.from_balance, seen.to_balance)


def _refusal(item: TransferRequest, balances: dict[int, Decimal]) -> Outcome | None:
    """Why a new transfer cannot apply to the locked ``balances``; None when it can."""
    missing = [a for a in (item.from_account, item.to_account) if a not in balances]
    if missing:
        return Outcome(item, "failed", "account_not_found", f"account {missing[0]} does not exist")
    if balances[item.from_account] < item.amount:
        message = f"account {item.from_account} has insufficient funds for {item.amount}"
        return Outcome(item, "failed", "insufficient_funds", message)
    return None


def _decide(item: TransferRequest, balances: dict[int, Decimal], dry_run: bool) -> Outcome:
    """Apply one new transfer to the locked ``balances`` in memory, or say why it fails."""
    refused = _refusal(item, balances)
    if refused is not None:
        return refused
    balances[item.from_account] -= item.amount
    balances[item.to_account] += item.amount
    status: Status = "validated" if dry_run else "applied"
    return Outcome(item, status, from_balance=balances[item.from_account], to_balance=balances[item.to_account])


async def apply_transfers(
    conn: Connection,
    schema: str,
    items: list[TransferRequest],
    *,
    job_id: int | None = None,
    dry_run: bool = False,
) -> list[Outcome]:
    """Apply ``items`` in order, each exactly once per idempotency key (see the module docstring)."""
    touched = {item.from_account for item in items} | {item.to_account for item in items}
    balances, recorded = await sql.lock_and_find(conn, schema, list(touched), [i.idempotency_key for i in items])
    seen: dict[str, Outcome] = {
        key: Outcome(
            TransferRequest(r["from_account"], r["to_account"], r["amount"], key),
            "applied",
            transfer_id=r["id"],
            from_balance=r["from_balance_after"],
            to_balance=r["to_balance_after"],
        )
        for key, r in recorded.items()
    }
    outcomes: list[Outcome] = []
    for item in items:
        key = item.idempotency_key
        outcome = _repeat(item, seen[key]) if key in seen else _decide(item, balances, dry_run)
        if key not in seen and outcome.status in ("applied", "validated"):
            seen[key] = outcome
        outcomes.append(outcome)
    applied = [o for o in outcomes if o.status == "applied"]
    if dry_run or not applied:
        return outcomes
    rows = [
        (o.request.idempotency_key, *_params(o.request), o.from_balance or Decimal(0), o.to_balance or Decimal(0))
        for o in applied  # an applied outcome always has both balances
    ]
    changed = {o.request.from_account for o in applied} | {o.request.to_account for o in applied}
    ids = await sql.record(conn, schema, rows, job_id, {i: balances[i] for i in changed})
    if len(ids) != len(applied):
        raise RetryTransaction("a concurrent transfer used one of these idempotency keys")
    for o in outcomes:
        if o.status in ("applied", "duplicate") and o.transfer_id is None:
            o.transfer_id = ids.get(o.request.idempotency_key)
    return outcomes


async def apply_one(conn: Connection, schema: str, item: TransferRequest) -> Outcome:
    """Apply one transfer exactly once per idempotency key in one statement (autocommit: run it
    with ``run_transaction(..., one_statement=True)``); RetryTransaction when a concurrent
    transfer inserted the same key first (the statement wrote nothing)."""
    rows = await sql.transfer_one(conn, schema, item.from_account, item.to_account, item.amount, item.idempotency_key)
    by_tag = {r["tag"]: r for r in rows}
    if (r := by_tag.get("prior")) is not None:
        recorded = TransferRequest(r["from_account"], r["to_account"], r["amount"], item.idempotency_key)
        seen = Outcome(recorded, "applied", None, None, r["id"], r["from_balance_after"], r["to_balance_after"])
        return _repeat(item, seen)
    if (r := by_tag.get("applied")) is not None:
        return Outcome(item, "applied", None, None, r["id"], r["from_balance_after"], r["to_balance_after"])
    b = by_tag["balances"]
    balances = {
        account: balance
        for account, balance in ((item.from_account, b["from_balance_after"]), (item.to_account, b["to_balance_after"]))
        if balance is not None
    }
    refused = _refusal(item, balances)
    if refused is None:
        raise RetryTransaction("a concurrent transfer used this idempotency key")
    return refused
