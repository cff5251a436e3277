"""``fasterdb-sidecar --local-cluster``: a throwaway primary + streaming replica for ``make run``."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

from devtools.cluster import ClusterError
from devtools.hot_standby import HotStandbyCluster


class LocalClusterError(Exception):
    """The local cluster could not be started; the message is one line."""


def _secret_file(cluster: HotStandbyCluster, name: str, value: str) -> Path:
    path = cluster.base_dir / name
    path.touch(mode=0o600)
    path.write_text(value)
    return path


@contextlib.contextmanager
def local_cluster(prog: str) -> Iterator[HotStandbyCluster]:
    """Start the cluster, point FASTERDB_* at it, and remove it again on exit."""
    cluster = HotStandbyCluster(replicas=1)
    print(f"{prog}: starting a local PostgreSQL primary + streaming replica ...", file=sys.stderr)
    try:
        cluster.start()
    except ClusterError as exc:
        raise LocalClusterError(f"cannot start the local cluster: {exc}") from None
    try:
        ports = ", ".join(f"{n.name} 127.0.0.1:{n.port}" for n in cluster.nodes)
        print(f"{prog}: local cluster up ({ports}); data in {cluster.base_dir}", file=sys.stderr)
        # The DSNs carry passwords: into 0600 files (as a Kubernetes Secret volume would hold them),
        # never into the environment, the terminal or a log.
        for name, value in cluster.sidecar_env().items():
            os.environ[f"{name}_FILE"] = str(_secret_file(cluster, name.removeprefix("FASTERDB_").lower(), value))
        primary_file = cluster.base_dir / "primary_dsn"
        print(f'{prog}: connect to the primary: psql "$(cat {primary_file})"', file=sys.stderr)
        if "FASTERDB_ADMIN_TOKEN" not in os.environ and "FASTERDB_ADMIN_TOKEN_FILE" not in os.environ:
            # A throwaway cluster gets a throwaway token, so the admin commands can be tried at once.
            token_file = _secret_file(cluster, "admin-token", secrets.token_urlsafe(24))
            os.environ["FASTERDB_ADMIN_TOKEN_FILE"] = str(token_file)
            print(f"{prog}: admin token: export FASTERDB_ADMIN_TOKEN=$(cat {token_file})", file=sys.stderr)
        yield cluster
    finally:
        cluster.destroy()
        print(f"{prog}: local cluster removed", file=sys.stderr)
