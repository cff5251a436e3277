"""Failover and split brain, for real: pg_ctl promote, the old primary back as a standby.

Each test runs a cluster of its own (they rearrange the servers' roles). The sidecar's primary
DSN names both servers (multi-host); its primary pool connects only to the one that takes writes
(target_session_attrs=read-write by default), discards a connection that meets a read-only
server (SQLSTATE 25006) and expires the others, so writes follow the new primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import quote

import httpx
import pytest

from devtools.cluster import APP_USER, DATABASE, Node
from devtools.hot_standby import HotStandbyCluster
from tests.harness import SidecarProcess, run_cli, wait_for

TOKEN = "failover-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def cluster() -> Iterator[HotStandbyCluster]:
    """A primary and a streaming replica of this test's own."""
    with HotStandbyCluster(replicas=1) as c:
        yield c


def env_for(c: HotStandbyCluster) -> dict[str, str]:
    p, r = c.primary, c.replica_nodes[0]
    both = f"postgresql://{APP_USER}:{quote(c.app_password, safe='')}@127.0.0.1:{p.port},127.0.0.1:{r.port}/{DATABASE}"
    return {
        "FASTERDB_PRIMARY_DSN": both,
        "FASTERDB_REPLICA_DSNS": f"replica-1={c.dsn(r)}",
        "FASTERDB_ADMIN_TOKEN": TOKEN,
        "FASTERDB_HEALTH_TIMEOUT": "0.5",
        "FASTERDB_HEALTH_CACHE_TTL": "0.25",
        "FASTERDB_CONNECT_TIMEOUT": "2",
        "FASTERDB_MONITOR_INTERVAL": "0.5",
    }


def transfer(sidecar: SidecarProcess, key: str) -> httpx.Response:
    body = {"from_account": 1, "to_account": 2, "amount": "1.00", "idempotency_key": key}
    return httpx.post(sidecar.url + "/transfers", json=body, headers=AUTH, timeout=30)


def prepare(sidecar: SidecarProcess) -> None:
    assert httpx.post(sidecar.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
    for account in (1, 2):
        httpx.post(sidecar.url + "/accounts", json={"id": account, "balance": "100"}, headers=AUTH, timeout=10)
    assert transfer(sidecar, "before").status_code == 200


def balance(c: HotStandbyCluster, node: Node, account: int) -> Decimal:
    return Decimal(c.sql(node, "SELECT balance FROM fasterdb.accounts WHERE id = :'id'", params={"id": str(account)}))


def become_standby_of(c: HotStandbyCluster, node: Node, upstream: Node) -> None:
    """Start a stopped server as a standby of ``upstream`` (how an old primary rejoins)."""
    (node.datadir / "standby.signal").touch()
    c.chown(node.datadir / "standby.signal")
    c.append_conf(node, {"primary_conninfo": f"'{c.conninfo(upstream, node.name)}'"})
    c.start_node(node)


def test_writes_follow_a_failover_through_a_multi_host_dsn(cluster: HotStandbyCluster) -> None:
    old, new = cluster.primary, cluster.replica_nodes[0]
    with SidecarProcess(env_for(cluster)) as sidecar:
        prepare(sidecar)
        cluster.wait_streaming()
        # The failover: the primary stops cleanly, the replica is promoted, the old primary comes
        # back as a standby of the new one — the DSN's first host is now a read-only server.
        cluster.stop_node(old, "fast")
        cluster.pg_ctl(new, "promote")
        become_standby_of(cluster, old, new)
        assert cluster.sql(old, "SELECT pg_is_in_recovery()") == "t"
        after = wait_for(lambda: (r := transfer(sidecar, "after")).status_code == 200 and r, 20, 0.2)
        assert after.json()["duplicate"] is False
        assert (balance(cluster, new, 1), balance(cluster, new, 2)) == (Decimal("98.00"), Decimal("102.00"))
        wait_for(lambda: sidecar.get("/health/db").status_code == 200, 10, what="ready on the new primary")
        # The replica's DSN reaches the new primary itself: promoted, not split brain.
        replica = wait_for(lambda: (b := sidecar.get("/health/replicas").json())["replicas"][0]["error"] and b)
        assert replica["replicas"][0]["state"] == "not_replica"
        assert replica["replicas"][0]["error"] == "promoted: this is the primary now"
        assert "Traceback" not in sidecar.logs()
    # A sidecar whose primary DSN names only the demoted server says so and stays unready.
    only_old = dict(env_for(cluster), FASTERDB_PRIMARY_DSN=cluster.dsn(old))
    with SidecarProcess(only_old) as sidecar:
        response = wait_for(lambda: (r := sidecar.get("/health/db")).json()["primary"]["error"] and r, 10)
        assert response.status_code == 503 and response.json()["primary"]["error"] == "not primary"
        assert transfer(sidecar, "stranded").status_code == 503


def test_split_brain_is_critical_and_a_read_only_server_is_left(cluster: HotStandbyCluster) -> None:
    old, promoted = cluster.primary, cluster.replica_nodes[0]
    # No background health checks: one could notice the read-only server below (and reconnect the
    # pool) before the transfer meets it, and the 25006 path is what this test is about.
    # The promoted server has no standby: acknowledge at COMMIT (FASTERDB_TRANSFER_ACK=primary), or
    # the transfer below would wait for a standby that is not there (tests/integration/test_split_brain.py).
    env = {**env_for(cluster), "FASTERDB_MONITOR_INTERVAL": "0", "FASTERDB_TRANSFER_ACK": "primary"}
    with SidecarProcess(env) as sidecar:
        prepare(sidecar)
        cluster.wait_streaming()
        cluster.pg_ctl(promoted, "promote")  # while the primary still accepts writes: split brain
        body = wait_for(
            lambda: (b := sidecar.get("/health/replicas").json())["replicas"][0]["state"] == "split_brain" and b
        )
        assert body["status"] == "unavailable" and body["replicas"][0]["ok"] is False
        check = run_cli("check-replicas", "--url", sidecar.url, "-o", "nagios")
        assert check.returncode == 2 and "replica-1 split_brain" in check.stdout
        assert 'fasterdb_replica_state{replica="replica-1",state="split_brain"} 1.0' in sidecar.get("/metrics").text
        # The fence asks every server on its own round (FASTERDB_SPLIT_BRAIN_CHECK_INTERVAL), apart
        # from the replica checks above: money stops once its round has seen the second writer.
        wait_for(lambda: "fasterdb_split_brain 1.0" in sidecar.get("/metrics").text, 10, what="the fence to close")
        assert transfer(sidecar, "while-split").json()["error"]["code"] == "split_brain"
        # The old primary turns read-only under the pool's open connections: a write meets
        # SQLSTATE 25006, the connection is discarded, and the retry goes to the writable host.
        cluster.sql(old, "ALTER SYSTEM SET default_transaction_read_only = on")
        cluster.sql(old, "SELECT pg_reload_conf()")
        # While both accepted writes, money did not move; one writer left: the fence opens. (Asked of
        # /metrics, not /health/db: its primary check would expire the pool before the 25006 path.)
        wait_for(lambda: "fasterdb_split_brain 0.0" in sidecar.get("/metrics").text, 10, what="the fence to open")
        moved = transfer(sidecar, "after-read-only")
        assert moved.status_code == 200, moved.text
        assert balance(cluster, promoted, 1) == Decimal("98.00") and balance(cluster, old, 1) == Decimal("99.00")
        assert "the server is read-only (failover?); reconnecting" in sidecar.logs()  # the 25006 path
