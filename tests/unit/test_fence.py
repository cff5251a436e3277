"""The split-brain fence's and the replication acknowledgement's pure parts."""

from __future__ import annotations

import asyncio
import time

from fasterdb.dsn import each_host, parse_dsn
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb_sidecar.replication.ack import target_of
from fasterdb_sidecar.replication.fence import Fence, FenceView, Watched, host_dsns, watched_hosts
from fasterdb_sidecar.replication.sql import AckPosition


def position(lsn: int, block: int = 8192) -> AckPosition:
    return AckPosition(True, lsn, block, 1, None, ("127.0.0.1", 5432))


def test_a_position_right_after_a_page_header_targets_the_page_start() -> None:
    # pg_current_wal_insert_lsn() after a page header points past it; nothing but the header is there.
    assert target_of(position(5 * 8192 + 24)) == 5 * 8192
    assert target_of(position(16 * 1024**2 + 40)) == 16 * 1024**2  # a segment's long header
    assert target_of(position(5 * 8192 + 64)) == 5 * 8192 + 64
    assert target_of(position(5 * 16384 + 24, 16384)) == 5 * 16384


def test_each_host_of_a_multi_host_dsn_and_the_names_the_fence_gives_them() -> None:
    dsn = "postgresql://u:p%40@h1:5432,h2:5433/db?target_session_attrs=standby"
    singles = each_host(dsn)
    assert [parse_dsn(d).hosts for d in singles] == [[("h1", 5432)], [("h2", 5433)]]
    assert all(d.endswith("/db?target_session_attrs=standby") and "u:p%40@" in d for d in singles)
    sockets = each_host("postgresql://u:p@/db?host=/a,/b&port=1,2&sslmode=disable")
    assert [parse_dsn(d).hosts for d in sockets] == [[("/a", 1)], [("/b", 2)]]
    # Hosts named twice (the primary DSN and a replica DSN name the same servers) are watched once.
    named = [("primary", dsn), ("r1", "postgresql://u:p@h2:5433/db"), ("r2", "postgresql://u:p@h3/db")]
    assert [label for label, _ in host_dsns(named)] == ["primary[1]", "primary[2]", "r2"]


def test_the_pools_are_asked_and_only_multi_host_dsns_add_connections() -> None:
    config = PoolConfig()
    pools = [ManagedPool("primary", "primary", "postgresql://u:p@h1/db", config)]
    assert [w.name for w in watched_hosts(pools, [("primary", "postgresql://u:p@h1/db")], config)] == ["primary"]
    multi = "postgresql://u:p@h1,h2/db"
    watched = watched_hosts(pools, [("primary", multi)], config)
    assert [w.name for w in watched] == ["primary", "primary[1]", "primary[2]"]
    assert all(w.pool.target_session_attrs == "any" for w in watched[1:])


def test_the_reason_reads_memory_and_says_why() -> None:
    config = PoolConfig()
    hosts = [Watched(n, ManagedPool(n, "replica", f"postgresql://u:p@{n}/db", config)) for n in ("a", "b")]
    fence = Fence(hosts, 0.25, 0.5)
    assert fence.reason() == "cannot tell which server is the primary: not checked yet"
    fence.view = FenceView(("a",), ("b",), time.monotonic())
    assert fence.reason() is None and not fence.fenced
    fence.view = FenceView(("a", "b"), (), time.monotonic())
    assert fence.reason() == "split brain: 2 servers accept writes (a, b)" and fence.fenced
    fence.view = FenceView(("a",), (), time.monotonic() - 60)
    assert str(fence.reason()).startswith("cannot tell which server is the primary: last checked 60")
    assert Fence(hosts[:1], 0.25, 0.5).reason() is None  # one host cannot disagree with itself
    assert Fence(hosts, 0, 0.5).reason() is None  # turned off


def test_an_unreachable_host_is_not_a_writer() -> None:
    # Both hosts refuse connections (nothing listens on port 1): no writer, no split brain, a round.
    config = PoolConfig(connect_timeout=0.5)
    hosts = [Watched(n, ManagedPool(n, "replica", f"postgresql://u:p@127.0.0.1:1/{n}", config)) for n in ("a", "b")]
    fence = Fence(hosts, 0.25, 0.5)
    view = asyncio.run(fence.check())
    assert view.writers == () and view.unreachable == ("a", "b") and fence.reason() is None
