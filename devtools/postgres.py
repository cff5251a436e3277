"""PostgreSQL binaries and the pieces every throwaway cluster shares: nodes, ports, errors."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path


class ClusterError(RuntimeError):
    """The local cluster could not be set up or operated; the message says which command failed."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres: $FASTERDB_PG_BINDIR, Debian's layout, or PATH."""
    explicit = os.environ.get("FASTERDB_PG_BINDIR")
    if explicit:
        if (Path(explicit) / "initdb").exists():
            return Path(explicit)
        raise ClusterError(f"FASTERDB_PG_BINDIR={explicit} holds no initdb")
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: run deploy/scripts/bootstrap.sh "
        "(installs them with apt-get), install PostgreSQL, or set FASTERDB_PG_BINDIR"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    """One PostgreSQL server of a cluster."""

    name: str
    datadir: Path
    port: int
    logfile: Path
    slot: str | None = None  # the physical replication slot a replica streams through

    def postmaster_pid(self) -> int | None:
        """The server's main process id while it runs (from postmaster.pid), else None."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
