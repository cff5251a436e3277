"""Latency of /health/replicas with two replicas against one ``SELECT 1`` round trip to a replica.

Target: p99 of the endpoint under 3x the p99 of a bare SELECT 1 round trip, with the cache off
(FASTERDB_HEALTH_CACHE_TTL=0: every request measures the primary and both replicas). The cached
figure is printed too: that is what probes see in practice.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from devtools.hot_standby import HotStandbyCluster
from tests.bench.common import split_cpus, wrk
from tests.harness import SidecarProcess

REQUESTS = 2000


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def _select1(dsn: str) -> list[float]:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(100):
            await conn.fetchval("SELECT 1")
        samples = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            await conn.fetchval("SELECT 1")
            samples.append((time.perf_counter() - started) * 1000)
        return samples
    finally:
        await conn.close()


def main() -> dict[str, float]:
    """Run the benchmark and print its figures."""
    with HotStandbyCluster(replicas=2) as pg:
        select1 = asyncio.run(_select1(pg.dsn(pg.replica_nodes[0])))
        results = {}
        for ttl in ("0", "1"):
            env = {**pg.sidecar_env(), "FASTERDB_HEALTH_CACHE_TTL": ttl}
            with SidecarProcess(env) as sidecar:
                assert sidecar.proc is not None
                prefix = split_cpus(sidecar.proc.pid)
                wrk(sidecar.url + "/health/replicas", 1, connections=1, prefix=prefix)  # warm-up
                results[ttl] = wrk(sidecar.url + "/health/replicas", 5, connections=1, prefix=prefix)
                assert results[ttl].non_2xx == 0
    base50, base99 = _pct(select1, 0.5), _pct(select1, 0.99)
    print("== /health/replicas (2 replicas, wrk, 1 connection) vs SELECT 1 on a replica (asyncpg) ==")
    print(f"  SELECT 1 round trip              p50 {base50:6.3f} ms   p99 {base99:6.3f} ms")
    for ttl, label in (("0", "uncached (TTL 0)"), ("1", "cached (TTL 1 s)")):
        r = results[ttl]
        print(
            f"  /health/replicas {label:16s} p50 {r.p50_ms:6.3f} ms   p99 {r.p99_ms:6.3f} ms   "
            f"p99 ratio {r.p99_ms / base99:5.2f}x"
        )
    print("  target: p99 < 3x the SELECT 1 p99 (the endpoint's figure includes its HTTP round trip)")
    return {"replicas_p99_ratio": results["0"].p99_ms / base99}


if __name__ == "__main__":
    main()
