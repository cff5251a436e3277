"""``make run``: the sidecar on a throwaway local primary + streaming replica (``python -m devtools.local``).

Runs from a source checkout only (devtools never ships): starts the cluster, points the sidecar's
settings at it through secret files, serves until Ctrl-C, and removes everything again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
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


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (None: it can); checked before anything is built."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def browse_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server listening on ``host:port``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main(argv: list[str] | None = None) -> None:
    """Start the local cluster, then the sidecar on it (``--host``/``--port`` as the sidecar's)."""
    from fasterdb_sidecar.main import PROG
    from fasterdb_sidecar.main import main as sidecar_main

    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    known, _ = parser.parse_known_args(args)
    host = known.host or os.environ.get("FASTERDB_HOST", "0.0.0.0")
    raw_port = os.environ.get("FASTERDB_PORT", "8080")
    port = known.port if known.port is not None else int(raw_port) if raw_port.isdigit() else None
    # Before the cluster is built (seconds): a busy port is found at once.
    busy = port_problem(host, port) if port is not None and port < 65536 else None  # else: settings say why
    if busy is not None:
        print(
            f"{PROG}: cannot listen on {host}:{port}: {busy} (choose another with --port, or make run PORT=...)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    try:
        with local_cluster(PROG):
            if port is not None and port < 65536:
                url = browse_url(host, port)
                print(f"{PROG}: status page {url}/ · API docs (Swagger UI) {url}/docs", file=sys.stderr)
            sidecar_main(args)
    except LocalClusterError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
