"""Rotated Secrets reach the running sidecar: new files, new token and DSNs, no restart.

The files are swapped the way the kubelet updates a Secret volume (written beside, renamed over).
The DSNs belong to a role of this test's own, whose password is really changed on the server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from devtools.cluster import DATABASE
from devtools.hot_standby import HotStandbyCluster
from tests import faults
from tests.harness import SidecarProcess, wait_for

ROLE = "rotator"
OLD, NEW = "old-pass-@1", "new-pass-#2"
TOKEN_A, TOKEN_B = "rotation-token-a-0123456789", "rotation-token-b-0123456789"


def dsn(pg: HotStandbyCluster, port: int, password: str) -> str:
    return f"postgresql://{ROLE}:{quote(password, safe='')}@127.0.0.1:{port}/{DATABASE}"


def swap(path: Path, text: str) -> None:
    """Replace ``path``'s content atomically, as the kubelet swaps a Secret volume's data."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def files(pg: HotStandbyCluster, secrets: Path, password: str, token: str) -> None:
    replica = pg.replica_nodes[0]
    swap(secrets / "primary-dsn", dsn(pg, pg.primary.port, password))
    swap(secrets / "replica-dsns", f"replica-1={dsn(pg, replica.port, password)}\n")
    swap(secrets / "admin-token", token)


@pytest.fixture()
def rotator(pg: HotStandbyCluster) -> Iterator[None]:
    pg.sql(
        pg.primary,
        f"DROP ROLE IF EXISTS {ROLE}; CREATE ROLE {ROLE} LOGIN PASSWORD :'pw' IN ROLE pg_monitor",
        params={"pw": OLD},
    )
    try:
        yield
    finally:
        faults.terminate_backends(pg, pg.primary, "fasterdb-sidecar%")
        pg.sql(pg.primary, f"DROP ROLE IF EXISTS {ROLE}")


def test_a_rotated_token_and_password_apply_without_a_restart(
    pg: HotStandbyCluster, rotator: None, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    files(pg, secrets, OLD, TOKEN_A)
    env = {
        "FASTERDB_PRIMARY_DSN_FILE": str(secrets / "primary-dsn"),
        "FASTERDB_REPLICA_DSNS_FILE": str(secrets / "replica-dsns"),
        "FASTERDB_ADMIN_TOKEN_FILE": str(secrets / "admin-token"),
        "FASTERDB_SECRET_RELOAD_INTERVAL": "0.2",
        "FASTERDB_HEALTH_CACHE_TTL": "0",
        "FASTERDB_HEALTH_TIMEOUT": "1",
    }
    with SidecarProcess(env) as sidecar:
        wait_for(lambda: sidecar.get("/health/db").status_code == 200, 20, what="the sidecar on the old password")

        def accepted(token: str) -> bool:
            """The admin endpoint took the token (it answers past the check: 200, or 503 without tables)."""
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.get(sidecar.url + "/jobs", headers=headers, timeout=30).status_code != 401

        assert accepted(TOKEN_A) and not accepted(TOKEN_B)
        # The password changes on the server; the sidecar's open connections stay, new ones would fail.
        pg.sql(pg.primary, f"ALTER ROLE {ROLE} PASSWORD :'pw'", params={"pw": NEW})
        faults.terminate_backends(pg, pg.primary, "fasterdb-sidecar%")
        wait_for(
            lambda: sidecar.get("/health/db").json()["primary"]["error"] == "authentication failed",
            20,
            what="the old password refused",
        )
        # A malformed file is reported and ignored: the running values stay.
        swap(secrets / "primary-dsn", "postgresql://rotator:pw@/")
        wait_for(lambda: "not valid" in sidecar.logs(), 10, what="the bad file reported")
        assert accepted(TOKEN_A)  # still the old token
        # The Secret is rotated: new password, new token.
        files(pg, secrets, NEW, TOKEN_B)
        wait_for(lambda: sidecar.get("/health/db").status_code == 200, 20, what="the new password in use")
        wait_for(lambda: accepted(TOKEN_B), 10, what="the new token accepted")
        assert not accepted(TOKEN_A)
        replicas = sidecar.get("/health/replicas?max_lag_bytes=1GB").json()["replicas"]
        assert replicas[0]["error"] != "authentication failed"
        logs = sidecar.logs()
    assert "rotated secrets applied" in logs
    for secret in (NEW, quote(NEW, safe=""), TOKEN_B, OLD, TOKEN_A):
        assert secret not in logs
