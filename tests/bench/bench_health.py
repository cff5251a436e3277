"""/health/db versus /health/live requests per second on one running sidecar, and its memory.

Target: /health/db reaches >= 0.9 of /health/live thanks to the single-flight cache (a query per
request would reach only about a quarter). Resident memory after start-up: target <= 48 MB.
"""

from __future__ import annotations

import httpx

from devtools.hot_standby import HotStandbyCluster
from tests.bench.common import Figure, median, rss_mb, split_cpus, wrk
from tests.harness import SidecarProcess

ROUNDS = 5
SECONDS = 2.0


def main() -> list[Figure]:
    """Run the benchmark and print its figures."""
    with HotStandbyCluster(replicas=1) as pg, SidecarProcess(pg.sidecar_env()) as sidecar:
        assert sidecar.proc is not None
        rss_start = rss_mb(sidecar.proc.pid)
        assert httpx.get(sidecar.url + "/health/db").status_code == 200
        prefix = split_cpus(sidecar.proc.pid)
        live, db = [], []
        for _ in range(ROUNDS):  # interleaved, so drift affects both sides alike
            live.append(wrk(sidecar.url + "/health/live", SECONDS, prefix=prefix))
            db.append(wrk(sidecar.url + "/health/db", SECONDS, prefix=prefix))
            for path in ("/metrics", "/db/activity", "/health/replicas"):  # a scrape and the views too
                httpx.get(sidecar.url + path, timeout=10)
        rss_loaded = rss_mb(sidecar.proc.pid)
        footprint = {
            node.name: int(
                pg.sql(node, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'fasterdb-sidecar/%'")
            )
            for node in pg.nodes
        }
    assert all(r.non_2xx == 0 for r in live + db), "non-2xx answers during the benchmark"
    live_rps, db_rps = median([r.rps for r in live]), median([r.rps for r in db])
    ratio = db_rps / live_rps
    print("== /health/db vs /health/live (wrk, 32 connections, 1 thread, loopback; median of rounds) ==")
    print(f"  /health/live  {live_rps:10.0f} req/s   p99 {median([r.p99_ms for r in live]):6.2f} ms")
    print(f"  /health/db    {db_rps:10.0f} req/s   p99 {median([r.p99_ms for r in db]):6.2f} ms")
    print(f"  ratio db/live {ratio:10.2f}   (target >= 0.90)")
    print(f"  sidecar RSS   {rss_start:10.1f} MiB after start-up, {rss_loaded:.1f} MiB after load")
    print("                (target <= 48 MiB after start-up; Patroni 44 MB)")
    shown = ", ".join(f"{name} {count}" for name, count in footprint.items())
    print(f"  connections per pod, per server: {shown}   (target: primary <= 2, each replica <= 1)")
    return [
        Figure("/health/db / /health/live req/s", ratio, "x", ">= 0.9", ratio >= 0.9),
        Figure("sidecar RSS after start-up", rss_start, "MiB", "<= 48", rss_start <= 48, "44 MB"),
    ]


if __name__ == "__main__":
    main()
