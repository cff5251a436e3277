"""DSN forms on the real cluster: Unix-socket directories (both spellings asyncpg accepts) and a
replica DSN that names several hosts, for the sidecar and the kit alike."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from devtools.cluster import APP_USER, DATABASE
from devtools.hot_standby import HotStandbyCluster
from fasterdb import Database
from tests.harness import SidecarProcess, wait_for


def socket_dsns(pg: HotStandbyCluster) -> tuple[str, str]:
    """The primary by ``?host=<dir>&port=``, the replica by ``%2F…`` before the path."""
    password = quote(pg.app_password, safe="")
    sock, replica = str(pg.socket_dir), pg.replica_nodes[0]
    primary = f"postgresql://{APP_USER}:{password}@/{DATABASE}?host={sock}&port={pg.primary.port}"
    encoded = quote(sock, safe="")
    return primary, f"postgresql://{APP_USER}:{password}@{encoded}:{replica.port}/{DATABASE}"


def test_the_sidecar_serves_over_unix_sockets_and_multi_host_replica_dsns(pg: HotStandbyCluster) -> None:
    primary, replica = socket_dsns(pg)
    password = quote(pg.app_password, safe="")
    both = f"127.0.0.1:{pg.primary.port},127.0.0.1:{pg.replica_nodes[0].port}"
    standby = f"postgresql://{APP_USER}:{password}@{both}/{DATABASE}?target_session_attrs=standby"
    env = {
        "FASTERDB_PRIMARY_DSN": primary,
        # A list of a socket DSN and a multi-host DSN: split between the items, not at every comma.
        "FASTERDB_REPLICA_DSNS": f"sock={replica},multi={standby}",
        "FASTERDB_HEALTH_TIMEOUT": "0.5",
        "FASTERDB_CONNECT_TIMEOUT": "2",
    }
    with SidecarProcess(env) as sidecar:
        wait_for(lambda: sidecar.get("/health/db").status_code == 200, 15, what="ready over the socket")
        body = wait_for(lambda: (r := sidecar.get("/health/replicas")).status_code == 200 and r.json(), 15)
        assert {r["name"]: r["state"] for r in body["replicas"]} == {"sock": "streaming", "multi": "streaming"}
        # One server reached by socket and by TCP is one server: no split brain.
        assert "split_brain" not in sidecar.get("/health/db").json()
        assert "fasterdb_split_brain 0.0" in sidecar.get("/metrics").text
        assert pg.app_password not in sidecar.logs()


def test_the_kit_connects_over_a_unix_socket(pg: HotStandbyCluster) -> None:
    primary, replica = socket_dsns(pg)
    env = {"FASTERDB_PRIMARY_DSN": primary, "FASTERDB_REPLICA_DSNS": f"r1={replica}", "FASTERDB_SIDECAR_URL": ""}

    async def roles() -> tuple[bool, bool]:
        db = Database.from_env(env)
        await db.open()
        try:
            on_primary = await db.run(lambda conn: conn.fetchval("SELECT pg_is_in_recovery()"))
            async with db.replicas["r1"].acquire() as conn:
                on_replica = await conn.fetchval("SELECT pg_is_in_recovery()")
            return on_primary, on_replica
        finally:
            await db.close()

    assert asyncio.run(roles()) == (False, True)
