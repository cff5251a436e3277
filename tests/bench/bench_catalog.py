"""The database view's cost: /db/activity with 500 backends, and many sidecars scraping at once.

1. /db/activity with 500 client backends open (some idle in transaction, a few waiting for a lock),
   catalog cache off, beside a bare `SELECT count(*) FROM pg_stat_activity` in the same run, each
   from a C client over one connection (wrk for the HTTP view, pgbench for the statement), in
   alternating rounds: how much the whole view (one statement, the summary, JSON, HTTP) costs.
2. N sidecars against one primary, each scraped /metrics and asked /db/* as fast as possible for a
   few seconds: catalog statements counted by pg_stat_statements against the ceiling of one per
   view per sidecar per TTL.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from devtools.cluster import ADMIN_USER, DATABASE, TempCluster
from tests.bench.common import Figure, median, wrk
from tests.harness import SidecarProcess

BACKENDS = 500
SIDECARS = 4
TTL = 1.0
SECONDS = 5.0
ROUNDS = 5


async def _open_backends(
    dsn: str,
) -> tuple[list[asyncpg.Connection], asyncpg.Connection, list[asyncio.Future[str]]]:
    conns: list[asyncpg.Connection] = []
    for start in range(0, BACKENDS, 50):
        batch = [
            asyncpg.connect(dsn, server_settings={"application_name": f"load-{(start + i) % 7}"})
            for i in range(min(50, BACKENDS - start))
        ]
        conns += await asyncio.gather(*batch)
    await conns[0].execute(
        "CREATE TABLE IF NOT EXISTS bench_lock (id int PRIMARY KEY); "
        "INSERT INTO bench_lock VALUES (1) ON CONFLICT DO NOTHING"
    )
    for conn in conns[:20]:  # idle in transaction
        await conn.execute("BEGIN; SELECT 1")
    holder = conns[20]
    await holder.execute("BEGIN; SELECT * FROM bench_lock WHERE id = 1 FOR UPDATE")
    # Waiting for the lock until the holder rolls back.
    waiters = [asyncio.ensure_future(c.execute("UPDATE bench_lock SET id = 1 WHERE id = 1")) for c in conns[21:25]]
    await asyncio.sleep(0.5)
    return conns, holder, waiters


def _pgbench_latency_ms(pg: TempCluster, script: Path, seconds: int) -> float:
    """Average latency of ``script`` from one pgbench client (one connection), in ms."""
    assert pg.bindir is not None
    out = subprocess.run(
        [str(pg.bindir / "pgbench"), "-n", "-c", "1", "-T", str(seconds), "-f", str(script)]
        + ["-h", "127.0.0.1", "-p", str(pg.primary.port), "-U", ADMIN_USER, DATABASE],
        env=dict(os.environ, PGPASSWORD=pg.admin_password),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    return float(re.search(r"latency average = ([\d.]+) ms", out).group(1))  # type: ignore[union-attr]


def _activity_cost(pg: TempCluster) -> float:
    env = {"FASTERDB_PRIMARY_DSN": pg.dsn(), "FASTERDB_CATALOG_CACHE_TTL": "0", "FASTERDB_HEALTH_TIMEOUT": "5"}

    async def hold() -> tuple[list[asyncpg.Connection], asyncpg.Connection, list[asyncio.Future[str]]]:
        return await _open_backends(pg.dsn())

    loop = asyncio.new_event_loop()
    conns, holder, waiters = loop.run_until_complete(hold())
    view, plain = [], []
    try:
        with SidecarProcess(env) as sidecar, tempfile.TemporaryDirectory() as tmp:
            body = httpx.get(sidecar.url + "/db/activity", timeout=10).json()
            script = Path(tmp) / "count.sql"
            script.write_text("SELECT count(*) FROM pg_stat_activity;\n")
            for _ in range(ROUNDS):  # alternating, so drift affects both alike
                view.append(wrk(sidecar.url + "/db/activity", 2, connections=1).p50_ms)
                plain.append(_pgbench_latency_ms(pg, script, 2))
    finally:

        async def release() -> None:
            await holder.execute("ROLLBACK")
            await asyncio.gather(*waiters, return_exceptions=True)
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

        loop.run_until_complete(release())
        loop.close()
    print(f"== /db/activity with {BACKENDS} client backends (catalog cache off; C clients, median of {ROUNDS}) ==")
    print(
        f"  the view seen: {body['connections']} connections, {len(body['lock_waiters'])} lock waiters, "
        f"idle in transaction {body['by_state'].get('idle in transaction', 0)}"
    )
    print(f"  GET /db/activity (wrk, 1 connection, p50)         {median(view):7.2f} ms")
    print(f"  SELECT count(*) FROM pg_stat_activity (pgbench)   {median(plain):7.2f} ms")
    print(f"  ratio                                             {median(view) / median(plain):7.1f}x   (target <= 2)")
    return median(view) / median(plain)


def _scrape_load(pg: TempCluster) -> float:
    env = {"FASTERDB_PRIMARY_DSN": pg.dsn(), "FASTERDB_CATALOG_CACHE_TTL": str(TTL)}
    sidecars = [SidecarProcess(env).start() for _ in range(SIDECARS)]
    try:
        pg.sql(pg.primary, "SELECT pg_stat_statements_reset()")

        async def hammer(url: str) -> int:
            count = 0
            deadline = time.monotonic() + SECONDS
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                while time.monotonic() < deadline:
                    answers = await asyncio.gather(*(http.get(p) for p in ("/metrics", "/db/activity", "/db/slots")))
                    assert {a.status_code for a in answers} == {200}
                    count += len(answers)
            return count

        async def everyone() -> int:
            return sum(await asyncio.gather(*(hammer(s.url) for s in sidecars)))

        started = time.monotonic()
        requests = asyncio.run(everyone())
        elapsed = time.monotonic() - started
        calls = int(
            pg.sql(
                pg.primary,
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%pg_stat_activity a%'",
            )
        )
    finally:
        for sidecar in sidecars:
            sidecar.stop()
    ceiling = SIDECARS * (int(elapsed / TTL) + 1)
    print(f"== {SIDECARS} sidecars scraped and asked at once for {elapsed:.1f}s (catalog TTL {TTL:g}s) ==")
    print(f"  requests answered                 {requests:7d}")
    print(f"  activity statements on the server {calls:7d}   (ceiling: one per sidecar per TTL = {ceiling})")
    print(f"  ratio to the ceiling              {calls / ceiling:7.2f}   (target <= 1.00)")
    return calls / ceiling


def main() -> list[Figure]:
    """Run both parts."""
    with TempCluster(extra_conf={"max_connections": str(BACKENDS + 50)}) as pg:
        activity = _activity_cost(pg)
        ceiling = _scrape_load(pg)
    return [
        Figure("GET /db/activity / count(*) pg_stat_activity", activity, "x", "<= 2", activity <= 2),
        Figure("catalog statements / one per sidecar per TTL", ceiling, "x", "<= 1", ceiling <= 1),
    ]


if __name__ == "__main__":
    main()
