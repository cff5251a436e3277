"""SQL of the health check: is the server in recovery, and does it refuse writes?"""

from __future__ import annotations

from fasterdb.pools.managed import Connection, ManagedPool

from ..db.monitor import Bounded, run_bounded

# One statement: in recovery (a standby)? and does it refuse writes (default_transaction_read_only)?
HEALTH_SQL = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"


async def _roles(conn: Connection) -> tuple[bool, bool]:
    row = await conn.fetchrow(HEALTH_SQL)
    return bool(row[0]), bool(row[1])


async def read_roles(pool: ManagedPool, deadline: float) -> Bounded[tuple[bool, bool]]:
    """(in recovery, read-only) of the pool's server, on its monitor connection under ``deadline``."""
    return await run_bounded(pool, deadline, _roles)
