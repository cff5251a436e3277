"""Versioned, idempotent schema migrations, safe when several sidecars run them at once.

Every migration runs inside one transaction that first takes a transaction-scoped advisory lock
derived from the schema name, so concurrent ``migrate`` calls queue up and the later ones find
nothing left to do. Applied versions are recorded in ``<schema>.schema_version``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fasterdb.pools.managed import ManagedPool
from fasterdb.pools.transactions import transaction

log = logging.getLogger("fasterdb.migrations")


def qualified(schema: str) -> str:
    """The schema as a quoted SQL identifier (its name is validated by the settings)."""
    if not schema.replace("_", "").isalnum() or not schema.islower():
        raise ValueError(f"unsafe schema name {schema!r}")
    return f'"{schema}"'


@dataclass(frozen=True)
class Migration:
    """What a migrate call found and did."""

    schema: str
    version: int
    applied: list[int]


# (version, description, SQL with {s} for the quoted schema)
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "accounts, transfers, jobs, job items",
        """
        CREATE TABLE {s}.accounts (
            id         bigint PRIMARY KEY,
            balance    numeric NOT NULL CHECK (balance >= 0 AND balance = round(balance, 2)),
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE {s}.jobs (
            id               bigserial PRIMARY KEY,
            kind             text NOT NULL,
            status           text NOT NULL CHECK (status IN
                               ('queued', 'running', 'throttled', 'succeeded', 'failed', 'cancelled')),
            total            integer NOT NULL,
            applied          integer NOT NULL DEFAULT 0,
            duplicates       integer NOT NULL DEFAULT 0,
            failed           integer NOT NULL DEFAULT 0,
            batch_size       integer NOT NULL,
            dry_run          boolean NOT NULL DEFAULT false,
            throttle_reason  text,
            errors           jsonb NOT NULL DEFAULT '[]',
            lease_owner      text,
            lease_expires_at timestamptz,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX jobs_claimable ON {s}.jobs (id) WHERE status IN ('queued', 'running', 'throttled');
        CREATE TABLE {s}.job_items (
            job_id          bigint NOT NULL REFERENCES {s}.jobs (id) ON DELETE CASCADE,
            seq             integer NOT NULL,
            from_account    bigint NOT NULL,
            to_account      bigint NOT NULL,
            amount          numeric NOT NULL,
            idempotency_key text NOT NULL,
            status          text NOT NULL DEFAULT 'pending' CHECK (status IN
                              ('pending', 'applied', 'duplicate', 'failed', 'validated')),
            error           text,
            PRIMARY KEY (job_id, seq)
        );
        CREATE INDEX job_items_pending ON {s}.job_items (job_id, seq) WHERE status = 'pending';
        CREATE TABLE {s}.transfers (
            id                 bigserial PRIMARY KEY,
            idempotency_key    text NOT NULL UNIQUE,
            from_account       bigint NOT NULL REFERENCES {s}.accounts (id),
            to_account         bigint NOT NULL REFERENCES {s}.accounts (id),
            amount             numeric NOT NULL CHECK (amount > 0 AND amount = round(amount, 2)),
            from_balance_after numeric NOT NULL,
            to_balance_after   numeric NOT NULL,
            created_at         timestamptz NOT NULL DEFAULT now(),
            job_id             bigint REFERENCES {s}.jobs (id) ON DELETE SET NULL,
            CHECK (from_account <> to_account)
        );
        CREATE INDEX transfers_job ON {s}.transfers (job_id) WHERE job_id IS NOT NULL;
        """,
    ),
]
LATEST = MIGRATIONS[-1][0]


async def migrate(pool: ManagedPool, schema: str, timeout: float = 60.0) -> Migration:
    """Create or upgrade the schema; returns what was applied. Idempotent and concurrency-safe."""
    s = qualified(schema)
    async with transaction(pool, timeout=timeout) as conn:
        # Transaction-scoped: released at COMMIT/ROLLBACK, never left on a pooled connection.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"fasterdb-migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.schema_version ("
            " version integer PRIMARY KEY, description text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {s}.schema_version")
        applied = []
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            await conn.execute(sql.format(s=s))
            await conn.execute(
                f"INSERT INTO {s}.schema_version (version, description) VALUES ($1, $2)", version, description
            )
            applied.append(version)
            log.info("applied migration %d (%s) to schema %s", version, description, schema)
    return Migration(schema, max([current, *applied]), applied)
