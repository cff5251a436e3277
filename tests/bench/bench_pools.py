"""Acquire + SELECT 1 throughput through the instrumented pool vs a bare asyncpg pool of the same size.

All run in this process on the same event loop type against the same server, interleaved in
rounds. Target: ratio >= 0.95 against a bare asyncpg pool with the same settings (release
without a reset query, the same command_timeout), which isolates the instrumentation. asyncpg's
default pool, which sends a reset query on every release, is printed too.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import uvloop

from devtools.hot_standby import HotStandbyCluster
from fasterdb.pools.managed import ManagedPool, PoolConfig
from tests.bench.common import Figure, median, pin_postgres, two_cpus

WORKERS = 32
POOL_SIZE = 10
SECONDS = 1.0
ROUNDS = 15
BASELINE = "bare asyncpg pool, same settings"


async def _keep_session(conn: asyncpg.Connection) -> None:
    """asyncpg's reset hook doing nothing: as the sidecar's pools (``PoolConfig.reset_session`` off),
    only an open transaction is rolled back on release."""


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


async def _run(dsn: str) -> dict[str, list[float]]:
    default = await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    # Same connection settings as the sidecar's pools (release without reset, command_timeout), so
    # the ratio isolates the instrumentation itself.
    same = await asyncpg.create_pool(
        dsn,
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        reset=_keep_session,
        command_timeout=30,
        # what ManagedPool sets on every connection (statement_timeout arms a timer per statement)
        server_settings={
            "application_name": "bench",
            "statement_timeout": "30000",
            "idle_in_transaction_session_timeout": "60000",
            "client_connection_check_interval": "100",
        },
    )
    ours = ManagedPool("primary", "primary", dsn, PoolConfig(min_size=POOL_SIZE, max_size=POOL_SIZE))
    await ours.open()
    await ours.ensure_created(10)
    acquires: dict[str, Callable[[], Any]] = {
        "bare asyncpg pool, default reset": default.acquire,
        BASELINE: same.acquire,
        "instrumented pool": ours.acquire,
    }
    rates: dict[str, list[float]] = {name: [] for name in acquires}
    try:
        for acquire in acquires.values():
            await _drive(acquire, 0.5)
        order = list(acquires.items())
        for round_ in range(ROUNDS):  # alternate the order so drift affects every variant alike
            for name, acquire in order if round_ % 2 else order[::-1]:
                rates[name].append(await _drive(acquire, SECONDS) / SECONDS)
        # Paired: each round's ratio compares runs seconds apart, so slow drift of this shared
        # machine cancels out; the median of those is the figure.
        rates["ratio"] = [o / b for o, b in zip(rates["instrumented pool"], rates[BASELINE], strict=True)]
        return rates
    finally:
        await default.close()
        await same.close()
        await ours.close()


def main() -> list[Figure]:
    """Run the benchmark and print its figures."""
    with HotStandbyCluster(replicas=0) as pg:
        split = two_cpus()
        if split:  # this process on one core, PostgreSQL on the other: far steadier figures
            os.sched_setaffinity(0, split[0])
            pin_postgres(pg.primary.datadir, split[1])
        rates = uvloop.run(_run(pg.dsn()))
    ours = median(rates["instrumented pool"])
    ratios = rates.pop("ratio")
    print(f"== pool acquire + SELECT 1, {WORKERS} tasks, pool size {POOL_SIZE}, uvloop, median of {ROUNDS} ==")
    for name, values in rates.items():
        print(f"  {name:34s} {median(values):9.0f} ops/s")
    ratio = median(ratios)
    print(
        f"  ratio instrumented / {BASELINE}: {ratio:.2f} (median of paired rounds, "
        f"{min(ratios):.2f}-{max(ratios):.2f})   (target >= 0.95)"
    )
    default = median(rates["bare asyncpg pool, default reset"])
    print(f"  ratio instrumented / asyncpg default pool: {ours / default:.2f}")
    return [Figure("instrumented pool / bare asyncpg pool", ratio, "x", ">= 0.95", ratio >= 0.95)]


if __name__ == "__main__":
    main()
