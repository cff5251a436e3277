"""The application kit: a routed read vs a bare asyncpg read, and stale reads with and without it.

1. ``db.read()`` + ``SELECT 1`` through the kit (routed to the replica by a real sidecar's view) vs
   the same statement on a bare asyncpg pool on the same replica with the same connection settings:
   32 tasks, pool size 10, paired rounds in alternating order (target: ratio >= 0.95).
2. Create-then-read across two processes of the example application, with the replica applying
   WAL 300 ms late (``recovery_min_apply_delay``): a write on one process, the read at once on the
   other — the framework guide's pattern (read from the replica, no token) against the kit's (the
   write's Fasterdb-Read-After token). Target: 0 stale reads with the kit.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import uvloop

from devtools.hot_standby import HotStandbyCluster
from fasterdb.database import Database
from fasterdb.settings import KitSettings
from tests.bench.common import Figure, median, pin_postgres, two_cpus
from tests.harness import SidecarProcess, example_app, wait_for

WORKERS = 32
POOL_SIZE = 10
SECONDS = 1.0
ROUNDS = 11
PAIRS = 200  # create-then-read pairs per pattern


async def _drive(acquire: Callable[[], Any], seconds: float) -> int:
    stop = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            async with acquire() as conn:
                await conn.fetchval("SELECT 1")
            done += 1

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return done


async def _reads(pg: HotStandbyCluster, sidecar_url: str) -> tuple[list[float], dict[str, int]]:
    replica = pg.replica_nodes[0]
    bare = await asyncpg.create_pool(
        pg.dsn(replica),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        command_timeout=30,  # asyncpg's own session reset on release, as the kit's pools do
        # what the kit's pools set on every connection (fasterdb.pools.managed, server side)
        server_settings={
            "application_name": "bench",
            "statement_timeout": "30000",
            "idle_in_transaction_session_timeout": "60000",
            "client_connection_check_interval": "100",
        },
    )
    env = {
        **pg.sidecar_env(),
        "FASTERDB_SIDECAR_URL": sidecar_url,
        "FASTERDB_POOL_MIN_SIZE": str(POOL_SIZE),
        "FASTERDB_POOL_MAX_SIZE": str(POOL_SIZE),
        "FASTERDB_READ_AFTER_KEY": "bench-key-0123456789abcdef",
    }
    db = Database(KitSettings.from_env(env))
    await db.open()
    try:
        async with asyncio.timeout(30):
            while db.router.choose().target != "replica-1" or not db.replicas["replica-1"].ready_for_acquire:
                await asyncio.sleep(0.05)
        for acquire in (bare.acquire, db.read):
            await _drive(acquire, 0.5)
        ratios = []
        for round_ in range(ROUNDS):
            pair = [(bare.acquire, "bare"), (db.read, "kit")]
            rates = {}
            for acquire, name in pair if round_ % 2 else pair[::-1]:
                rates[name] = await _drive(acquire, SECONDS) / SECONDS
            ratios.append(rates["kit"] / rates["bare"])
        return ratios, dict(db.counts)
    finally:
        await db.close()
        await bare.close()


def _stale_reads(pg: HotStandbyCluster, sidecar: SidecarProcess) -> dict[str, int]:
    env = {**pg.sidecar_env(), "FASTERDB_READ_AFTER_KEY": "bench-key-0123456789abcdef"}
    replica = pg.replica_nodes[0]
    stale = {"guide": 0, "kit": 0}
    with example_app(env, sidecar=sidecar, name="bench-a") as a, example_app(env, sidecar=sidecar, name="bench-b") as b:
        wait_for(lambda: httpx.post(a.url + "/items", json={"name": "x"}).status_code == 201, 30, what="app a")
        wait_for(lambda: b.get("/health/db").status_code == 200, 30, what="app b")
        pg.sql(replica, "ALTER SYSTEM SET recovery_min_apply_delay = '300ms'; SELECT pg_reload_conf()")
        try:
            with httpx.Client(timeout=10) as client, asyncpg_replica(pg) as guide_read:
                for _ in range(PAIRS):
                    created = client.post(a.url + "/items", json={"name": "pair"})
                    item = created.json()["id"]
                    # The guide's get_read_conn: every read on the replica, whatever its lag.
                    stale["guide"] += guide_read(item) is None
                    token = {"fasterdb-read-after": created.headers["fasterdb-read-after"]}
                    stale["kit"] += client.get(f"{b.url}/items/{item}", headers=token).status_code == 404
        finally:
            pg.sql(replica, "ALTER SYSTEM RESET recovery_min_apply_delay; SELECT pg_reload_conf()")
    return stale


class asyncpg_replica:  # noqa: N801 - used as a context manager factory
    """A synchronous 'read this item on the replica' (the guide's pattern), over one connection."""

    def __init__(self, pg: HotStandbyCluster) -> None:
        self.dsn = pg.dsn(pg.replica_nodes[0])
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> Callable[[int], Any]:
        self.conn = self.loop.run_until_complete(asyncpg.connect(self.dsn))
        return lambda item: self.loop.run_until_complete(self.conn.fetchrow("SELECT id FROM items WHERE id = $1", item))

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def main() -> list[Figure]:
    """Run both parts and print their figures."""
    with HotStandbyCluster(replicas=1) as pg:
        env = {**pg.sidecar_env(), "FASTERDB_HEALTH_CACHE_TTL": "0.25"}
        with SidecarProcess(env) as sidecar:
            split = two_cpus()
            if split:
                os.sched_setaffinity(0, split[0])
                for node in pg.nodes:
                    pin_postgres(node.datadir, split[1])
            ratios, counts = uvloop.run(_reads(pg, sidecar.url))
            stale = _stale_reads(pg, sidecar)
    ratio = median(ratios)
    print(
        f"== kit: routed read + SELECT 1 vs a bare asyncpg pool on the replica, {WORKERS} tasks, median of {ROUNDS} =="
    )
    print(f"  ratio kit / bare: {ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f})   (target >= 0.95)")
    print(f"  reads by target: {', '.join(f'{k}={v}' for k, v in sorted(counts.items()) if k.startswith('reads:'))}")
    print(f"== create-then-read across two processes, replay 300 ms late, {PAIRS} pairs ==")
    print(f"  stale reads, the guide's pattern (replica, no token): {stale['guide']}")
    print(f"  stale reads, the kit (Fasterdb-Read-After):           {stale['kit']}   (target 0)")
    return [
        Figure("kit routed read / bare asyncpg pool", ratio, "x", ">= 0.95", ratio >= 0.95),
        Figure("kit stale reads (read-after token)", stale["kit"], "", "0", stale["kit"] == 0),
    ]


if __name__ == "__main__":
    main()
