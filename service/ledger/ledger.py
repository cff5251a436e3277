"""The ledger: accounts and exactly-once transfers on the primary, balances read where asked."""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal

from fasterdb.errors import Conflict, DatabaseUnavailable, NotFound, ServiceError
from fasterdb.pools.databases import Databases
from fasterdb.pools.managed import Connection, ManagedPool
from fasterdb.pools.transactions import run_transaction, transaction

from ..health.checks import PoolHealth
from ..replication.ack import ReplicationAck, peer
from ..replication.fence import Fence
from . import sql
from .money import TransferRequest
from .transfers import Outcome, apply_one

log = logging.getLogger("fasterdb.ledger")

_FAILURES = {
    "account_not_found": NotFound,
    "insufficient_funds": Conflict,
    "idempotency_conflict": Conflict,
}


class SplitBrain(ServiceError):
    """Money does not move while two servers take writes (or the sidecar cannot tell the primary)."""

    status = 503
    code = "split_brain"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers["retry-after"] = "1"


class Ledger:
    """Accounts and transfers on the primary; account reads from a replica unless asked otherwise."""

    def __init__(
        self,
        databases: Databases,
        health: PoolHealth,
        schema: str,
        retry_budget: float = 10.0,
        fence: Fence | None = None,
        ack: ReplicationAck | None = None,
    ) -> None:
        self.databases = databases
        self.health = health
        self.schema = schema
        self.fence = fence
        self.ack = ack
        self.retry_budget = retry_budget  # seconds a transfer may take, every retry included
        self.counts: Counter[str] = Counter()  # transfer outcomes, for fasterdb_transfers_total

    async def transfer(self, request: TransferRequest) -> Outcome:
        """Apply one transfer exactly once per idempotency key; raises the contract's errors.

        Fenced while two servers take writes (503 ``split_brain``, nothing applied); acknowledged
        only once a standby has the COMMIT (``replication.ack``) and the fence is still open.
        """
        await self._fenced("nothing was applied")
        server: list[object] = []

        async def work(conn: Connection) -> Outcome:
            server[:] = [peer(conn)]  # the server this try commits on (no round trip)
            return await apply_one(conn, self.schema, request)

        try:
            outcome = await run_transaction(
                self.databases.primary,
                work,
                budget=self.retry_budget,
                idempotent=True,  # the key makes a second application impossible
                one_statement=True,  # one round trip: the statement is the transaction
            )
        except DatabaseUnavailable:
            self.counts["unavailable"] += 1
            raise
        if outcome.status == "failed":
            self.counts[outcome.kind] += 1
            code = outcome.code or "transfer_failed"
            raise _FAILURES.get(code, Conflict)(outcome.message or "the transfer was refused", code=code)
        if self.ack is not None:
            try:
                await self.ack.confirm(server[0] if server else None)
            except ServiceError:
                self.counts["not_replicated"] += 1
                raise
        await self._fenced(
            "it may have been applied on one of them: retry with the same idempotency_key once it clears"
        )
        self.counts[outcome.kind] += 1
        return outcome

    async def _fenced(self, consequence: str) -> None:
        """SplitBrain when money must not move now (memory only while the fence's view is fresh)."""
        if self.fence is None:
            return
        reason = await self.fence.settled()
        if reason is not None:
            self.counts["split_brain"] += 1
            raise SplitBrain(f"money movement is fenced ({reason}); {consequence}")

    async def create_account(self, account_id: int, balance: Decimal) -> None:
        """Open an account; 409 when the id exists."""
        async with transaction(self.databases.primary) as conn:
            created = await sql.create_account(conn, self.schema, account_id, balance)
        if not created:
            raise Conflict(f"account {account_id} exists already", code="account_exists")

    async def seed_accounts(self, first: int, last: int, balance: Decimal) -> int:
        """Open accounts first..last in one transaction; existing ones stay as they are."""
        async with transaction(self.databases.primary) as conn:
            return await sql.seed_accounts(conn, self.schema, first, last, balance)

    async def account(self, account_id: int, source: str) -> tuple[Decimal, str]:
        """(balance, the pool that read it): from a healthy replica (falling back to the next, then
        the primary) unless ``source`` is primary."""
        candidates: list[ManagedPool] = []
        if source == "replica":
            candidates = [p for p in self.databases.replicas if (check := self.health.last(p.name)) is None or check.ok]
        candidates.append(self.databases.primary)
        last_error: ServiceError | None = None
        for pool in candidates:
            try:
                async with transaction(pool, readonly=True) as conn:
                    balance = await sql.get_account(conn, self.schema, account_id)
            except DatabaseUnavailable as exc:
                last_error = exc
                log.warning("account read on %s failed (%s); trying the next pool", pool.name, exc.category)
                continue
            if balance is None:
                raise NotFound(f"account {account_id} does not exist", code="account_not_found")
            return balance, pool.name
        raise last_error or DatabaseUnavailable("no pool could be asked", pool="primary")
