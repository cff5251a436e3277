"""A throwaway local PostgreSQL primary + streaming replica(s), for tests and ``--local-cluster``.

Modelled on asyncpg's test harness: initdb, pg_basebackup, ``standby.signal``; free loopback
ports; SCRAM password authentication; a temporary directory removed on stop. When we are root
the server runs as the ``postgres`` OS user (PostgreSQL refuses to run as root). When no
PostgreSQL binaries are found, they are installed with ``apt-get`` (root only).
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

log = logging.getLogger("fasterdb.devcluster")

ADMIN_USER = "fasterdb_admin"
APP_USER = "fasterdb_app"
DATABASE = "fasterdb"


class ClusterError(RuntimeError):
    """The local cluster could not be set up or operated."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path)) or (0,)


def find_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres: $FASTERDB_PG_BINDIR, Debian's layout, or PATH."""
    explicit = os.environ.get("FASTERDB_PG_BINDIR")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def ensure_bindir() -> Path:
    """find_bindir(), installing PostgreSQL with apt-get first when it is missing (root only)."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL "
            "(e.g. apt-get install postgresql) or set FASTERDB_PG_BINDIR"
        )
    log.warning("PostgreSQL binaries not found; installing them with apt-get")
    # Install the binaries without creating (and starting) a default cluster on port 5432.
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("create_main_cluster = false\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql", "postgresql-contrib"],
    ):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(cmd[:2])} failed: {result.stderr.strip()[-500:]}")
    bindir = find_bindir()
    if bindir is None:
        raise ClusterError("apt-get installed PostgreSQL but initdb is still not found")
    return bindir


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    """One PostgreSQL server of the cluster."""

    name: str
    datadir: Path
    port: int
    logfile: Path
    is_replica: bool
    slot: str | None = None


@dataclass
class LocalCluster:
    """A primary and ``replicas`` streaming replicas on 127.0.0.1, in a temporary directory."""

    replicas: int = 1
    base_dir: Path | None = None
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    app_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    extra_conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bindir: Path | None = None
        self.primary: Node | None = None
        self.replica_nodes: list[Node] = []
        self._owns_dir = self.base_dir is None
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def start(self) -> None:
        """initdb the primary, start it, create roles and database, then clone and start replicas."""
        self.bindir = ensure_bindir()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="fasterdb-pg-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        (self.base_dir / "sock").mkdir(exist_ok=True)
        self._chown(self.base_dir)
        self._chown(self.base_dir / "sock")
        try:
            self._init_primary()
            for i in range(1, self.replicas + 1):
                self._add_replica(f"replica-{i}")
            self.wait_streaming()
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        """Stop every server (immediately) and remove the directory."""
        for node in [*self.replica_nodes, *([self.primary] if self.primary else [])]:
            if self.is_running(node):
                self._pg_ctl(node, "stop", "-m", "immediate", check=False)
        if self._owns_dir and self.base_dir is not None and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- node operations --------------------------------------------------------------------

    def stop(self, node: Node, mode: str = "immediate") -> None:
        """pg_ctl stop -m ``mode`` (immediate: like a crash)."""
        self._pg_ctl(node, "stop", "-m", mode)

    def start_node(self, node: Node) -> None:
        """pg_ctl start and wait until it accepts connections."""
        self._pg_ctl(node, "start", "-l", str(node.logfile), "-t", "60")

    def is_running(self, node: Node) -> bool:
        """Whether the server of ``node`` is up."""
        return self._pg_ctl(node, "status", check=False).returncode == 0

    def pause_replay(self, node: Node) -> None:
        """pg_wal_replay_pause() on a replica."""
        self.sql(node, "SELECT pg_wal_replay_pause()")

    def resume_replay(self, node: Node) -> None:
        """pg_wal_replay_resume() on a replica."""
        self.sql(node, "SELECT pg_wal_replay_resume()")

    def terminate_backends(self, node: Node, application_name_like: str = "fasterdb-sidecar%") -> int:
        """pg_terminate_backend() on every backend whose application_name matches; returns how many."""
        out = self.sql(
            node,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name LIKE '{application_name_like}' AND pid <> pg_backend_pid()",
        )
        return int(out or 0)

    def sql(self, node: Node, query: str, database: str = DATABASE) -> str:
        """Run ``query`` with psql as the admin user; returns the unaligned, tuples-only output."""
        assert self.bindir is not None
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(node.port),
                "-U",
                ADMIN_USER,
                "-d",
                database,
                "-c",
                query,
            ],
            env=dict(os.environ, PGPASSWORD=self.admin_password, PGCONNECT_TIMEOUT="5"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise ClusterError(f"psql on {node.name} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    # -- DSNs -------------------------------------------------------------------------------

    def dsn(self, node: Node | None = None, *, user: str = APP_USER, password: str | None = None) -> str:
        """A postgresql:// DSN for ``node`` (default: the primary) as the application user."""
        node = node or self.primary
        assert node is not None
        if password is None:
            password = self.app_password if user == APP_USER else self.admin_password
        return f"postgresql://{quote(user)}:{quote(password, safe='')}@127.0.0.1:{node.port}/{DATABASE}"

    def sidecar_env(self) -> dict[str, str]:
        """FASTERDB_PRIMARY_DSN and FASTERDB_REPLICA_DSNS for a sidecar on this cluster."""
        return {
            "FASTERDB_PRIMARY_DSN": self.dsn(),
            "FASTERDB_REPLICA_DSNS": ",".join(f"{n.name}={self.dsn(n)}" for n in self.replica_nodes),
        }

    # -- setup ------------------------------------------------------------------------------

    def wait_streaming(self, timeout: float = 30.0) -> None:
        """Wait until every replica streams from the primary."""
        assert self.primary is not None
        deadline = time.monotonic() + timeout
        want = len(self.replica_nodes)
        while True:
            got = int(self.sql(self.primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"))
            if got >= want:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"only {got} of {want} replicas streaming after {timeout:.0f}s")
            time.sleep(0.05)

    def _init_primary(self) -> None:
        assert self.base_dir is not None and self.bindir is not None
        node = Node("primary", self.base_dir / "primary", free_port(), self.base_dir / "primary.log", False)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(node.datadir),
                "-U",
                ADMIN_USER,
                f"--pwfile={pwfile}",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(node.port),
            "unix_socket_directories": f"'{self.base_dir / 'sock'}'",
            "fsync": "off",  # throwaway data: speed over durability
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "32MB",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_keep_size": "512MB",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "wal_receiver_status_interval": "1s",
            "wal_retrieve_retry_interval": "500ms",
            "password_encryption": "'scram-sha-256'",
            "log_min_messages": "warning",
        }
        if self._has_extension("pg_stat_statements"):
            settings["shared_preload_libraries"] = "'pg_stat_statements'"
        settings.update(self.extra_conf)
        self._append_conf(node, settings)
        self.primary = node
        self.start_node(node)
        self.sql(
            node,
            f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{self.app_password}'; GRANT pg_monitor TO {APP_USER}",
            database="postgres",
        )
        self.sql(node, f"CREATE DATABASE {DATABASE} OWNER {APP_USER}", database="postgres")
        if "shared_preload_libraries" in settings:
            self.sql(node, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _add_replica(self, name: str) -> Node:
        assert self.base_dir is not None and self.bindir is not None and self.primary is not None
        slot = name.replace("-", "_")
        node = Node(name, self.base_dir / name, free_port(), self.base_dir / f"{name}.log", True, slot)
        self._run(
            [
                str(self.bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                ADMIN_USER,
                "-D",
                str(node.datadir),
                "-X",
                "stream",
                "-C",
                "-S",
                slot,
                "--no-sync",
                "-c",
                "fast",
            ],
            env={"PGPASSWORD": self.admin_password},
        )
        (node.datadir / "standby.signal").touch()
        self._chown(node.datadir / "standby.signal")
        conninfo = (
            f"host=127.0.0.1 port={self.primary.port} user={ADMIN_USER} "
            f"password={self.admin_password} application_name={name}"
        )
        self._append_conf(
            node,
            {
                "port": str(node.port),
                "primary_conninfo": f"'{conninfo}'",
                "primary_slot_name": f"'{slot}'",
            },
        )
        self.replica_nodes.append(node)
        self.start_node(node)
        return node

    def point_replica_nowhere(self, node: Node) -> None:
        """Cut a replica's WAL receiver for good: primary_conninfo to a closed port, then reload."""
        self.sql(node, f"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={free_port()} user=nobody'")
        self.sql(node, "SELECT pg_reload_conf()")

    def restore_replica_conninfo(self, node: Node) -> None:
        """Undo point_replica_nowhere()."""
        self.sql(node, "ALTER SYSTEM RESET primary_conninfo")
        self.sql(node, "SELECT pg_reload_conf()")

    # -- helpers ----------------------------------------------------------------------------

    def _has_extension(self, name: str) -> bool:
        assert self.bindir is not None
        sharedir = subprocess.run(
            [str(self.bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return bool(sharedir) and (Path(sharedir) / "extension" / f"{name}.control").exists()

    def _append_conf(self, node: Node, settings: dict[str, str]) -> None:
        with open(node.datadir / "postgresql.conf", "a") as f:
            f.write("\n# fasterdb devcluster\n")
            for key, value in settings.items():
                f.write(f"{key} = {value}\n")

    def _pg_ctl(self, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        return self._run([str(self.bindir / "pg_ctl"), "-D", str(node.datadir), "-w", *args], check=check)

    def _chown(self, path: Path) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(
        self, cmd: list[str], *, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, **(env or {}))
        if self._run_as:
            cmd = [
                "runuser",
                "-u",
                self._run_as,
                "--",
                "env",
                *[f"{k}={v}" for k, v in (env or {}).items()],
                *cmd,
            ]
        result = subprocess.run(
            cmd, env=full_env, capture_output=True, text=True, timeout=120, cwd="/", stdin=subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            shown = " ".join(c for c in cmd if "PASSWORD" not in c)
            raise ClusterError(f"command failed ({shown[:300]}): {result.stderr.strip()[-800:]}")
        return result
