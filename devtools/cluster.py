"""Throwaway PostgreSQL clusters on loopback, for tests, benchmarks and ``--local-cluster``.

Modelled on asyncpg's ``asyncpg/cluster.py``: ``TempCluster`` is one primary (initdb, SCRAM
passwords, a free port, a temporary directory); ``HotStandbyCluster`` (``devtools.hot_standby``)
adds streaming replicas (``pg_basebackup``, ``standby.signal``, a physical slot each). ``status()`` tells what runs;
failures raise ``ClusterError`` with the command's own message, never an ``assert``.

PostgreSQL refuses to run as root, so as root the servers run as the ``postgres`` OS user. The
binaries must be installed already (``deploy/scripts/bootstrap.sh`` does that with apt-get).
SQL that carries a value (a password) passes it as a psql variable, never by string formatting.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

from devtools.postgres import ClusterError, Node, find_bindir, free_port

__all__ = ["ADMIN_USER", "APP_USER", "DATABASE", "ClusterError", "Node", "TempCluster", "free_port", "find_bindir"]

ADMIN_USER = "fasterdb_admin"
APP_USER = "fasterdb_app"
DATABASE = "fasterdb"
NodeStatus = Literal["running", "stopped"]


class TempCluster:
    """A PostgreSQL primary on 127.0.0.1 in a temporary directory, removed by ``destroy()``."""

    def __init__(self, *, base_dir: Path | None = None, extra_conf: Mapping[str, str] | None = None) -> None:
        self.admin_password = secrets.token_urlsafe(18)
        self.app_password = secrets.token_urlsafe(18)
        self.extra_conf = dict(extra_conf or {})
        self._base_dir = base_dir
        self._owns_dir = base_dir is None
        self._bindir: Path | None = None
        self._primary: Node | None = None
        self.replica_nodes: list[Node] = []
        self._run_as = "postgres" if os.geteuid() == 0 else None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> TempCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def start(self) -> None:
        """initdb the primary, start it, create the roles and the database."""
        self._bindir = find_bindir()
        if self._base_dir is None:
            self._base_dir = Path(tempfile.mkdtemp(prefix="fasterdb-pg-"))
        self._base_dir.mkdir(parents=True, exist_ok=True)
        for path in (self._base_dir, self.socket_dir):
            path.mkdir(exist_ok=True)
            self.chown(path)
        self._write_passfile()
        try:
            self._init_primary()
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        """Stop every server (immediately) and remove the directory."""
        for node in self.nodes:
            if self.is_running(node):
                self.pg_ctl(node, "stop", "-m", "immediate", check=False)
        if self._owns_dir and self._base_dir is not None and self._base_dir.exists():
            shutil.rmtree(self._base_dir, ignore_errors=True)

    def status(self) -> dict[str, NodeStatus]:
        """Each node's name and whether its server runs."""
        return {node.name: ("running" if self.is_running(node) else "stopped") for node in self.nodes}

    # -- what a started cluster has ---------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """The cluster's directory (data directories, logs, the password file)."""
        if self._base_dir is None:
            raise ClusterError("the cluster has not been started")
        return self._base_dir

    @property
    def socket_dir(self) -> Path:
        """Where the servers put their Unix sockets."""
        return self.base_dir / "sock"

    @property
    def passfile(self) -> Path:
        """A libpq password file (0600) for the admin user, used by psql and the replicas."""
        return self.base_dir / "pgpass"

    @property
    def bindir(self) -> Path:
        """The PostgreSQL binaries in use."""
        if self._bindir is None:
            raise ClusterError("the cluster has not been started")
        return self._bindir

    @property
    def primary(self) -> Node:
        """The primary node."""
        if self._primary is None:
            raise ClusterError("the cluster has no primary: start() it first")
        return self._primary

    @property
    def nodes(self) -> list[Node]:
        """Every node, primary first."""
        return ([self._primary] if self._primary else []) + self.replica_nodes

    # -- operating nodes --------------------------------------------------------------------

    def start_node(self, node: Node) -> None:
        """pg_ctl start and wait until it accepts connections."""
        self.pg_ctl(node, "start", "-l", str(node.logfile), "-t", "60")

    def stop_node(self, node: Node, mode: str = "immediate") -> None:
        """pg_ctl stop -m ``mode`` (immediate: like a crash; fast: a clean shutdown)."""
        self.pg_ctl(node, "stop", "-m", mode)

    def is_running(self, node: Node) -> bool:
        """Whether the server of ``node`` is up: its postmaster.pid names a live process.

        The check ``pg_ctl status`` makes, without starting a process for it (the tests ask
        after every test, and a process of its own cost tens of milliseconds each time).
        """
        pid = node.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, but another user's (as pg_ctl status, it counts)
            return True
        return True

    def pg_ctl(self, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl -D <datadir> -w <args>`` as the server's OS user."""
        return self.run([str(self.bindir / "pg_ctl"), "-D", str(node.datadir), "-w", *args], check=check)

    def sql(self, node: Node, query: str, *, database: str = DATABASE, params: Mapping[str, str] | None = None) -> str:
        """Run ``query`` with psql as the admin user; returns the unaligned, tuples-only output.

        ``params`` become psql variables, so values are quoted by psql: ``:'name'`` in the query.
        """
        command = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for key, value in (params or {}).items():
            command += ["-v", f"{key}={value}"]
        command += ["-h", "127.0.0.1", "-p", str(node.port), "-U", ADMIN_USER, "-d", database, "-f", "-"]
        result = subprocess.run(
            command,
            input=query,
            env=dict(os.environ, PGPASSFILE=str(self.passfile), PGCONNECT_TIMEOUT="5"),
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
        if password is None:
            password = self.app_password if user == APP_USER else self.admin_password
        return f"postgresql://{quote(user)}:{quote(password, safe='')}@127.0.0.1:{node.port}/{DATABASE}"

    def sidecar_env(self) -> dict[str, str]:
        """FASTERDB_PRIMARY_DSN and FASTERDB_REPLICA_DSNS for a sidecar on this cluster."""
        return {
            "FASTERDB_PRIMARY_DSN": self.dsn(),
            "FASTERDB_REPLICA_DSNS": ",".join(f"{n.name}={self.dsn(n)}" for n in self.replica_nodes),
        }

    # -- building blocks, also for tests that rearrange the cluster -------------------------

    def append_conf(self, node: Node, settings: Mapping[str, str]) -> None:
        """Append ``key = value`` lines to the node's postgresql.conf (read at its next start)."""
        with open(node.datadir / "postgresql.conf", "a") as f:
            f.write("\n# fasterdb devtools\n")
            for key, value in settings.items():
                f.write(f"{key} = {value}\n")

    def conninfo(self, upstream: Node, application_name: str) -> str:
        """A primary_conninfo for a replica of ``upstream`` (password from the password file)."""
        return (
            f"host=127.0.0.1 port={upstream.port} user={ADMIN_USER} passfile={self.passfile} "
            f"application_name={application_name}"
        )

    def chown(self, path: Path) -> None:
        """Hand ``path`` to the servers' OS user (when we run as root)."""
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def run(
        self, cmd: list[str], *, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL command as the servers' OS user; ClusterError when it fails and ``check``."""
        extra = {"PGPASSFILE": str(self.passfile), **(env or {})}
        if self._run_as:
            cmd = ["runuser", "-u", self._run_as, "--", "env", *[f"{k}={v}" for k, v in extra.items()], *cmd]
        result = subprocess.run(
            cmd,
            env=dict(os.environ, **extra),
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise ClusterError(f"command failed ({' '.join(cmd)[:300]}): {result.stderr.strip()[-800:]}")
        return result

    # -- setup ------------------------------------------------------------------------------

    def _write_passfile(self) -> None:
        self.passfile.write_text(f"127.0.0.1:*:*:{ADMIN_USER}:{self.admin_password}\n")
        self.passfile.chmod(0o600)
        self.chown(self.passfile)

    def _init_primary(self) -> None:
        node = Node("primary", self.base_dir / "primary", free_port(), self.base_dir / "primary.log")
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        pwfile.chmod(0o600)
        self.chown(pwfile)
        try:
            self.run(
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
        finally:
            pwfile.unlink(missing_ok=True)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(node.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
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
        self.append_conf(node, settings)
        self._primary = node
        self.start_node(node)
        self.sql(
            node,
            f"CREATE ROLE {APP_USER} LOGIN PASSWORD :'password';\nGRANT pg_monitor TO {APP_USER};",
            database="postgres",
            params={"password": self.app_password},
        )
        self.sql(node, f"CREATE DATABASE {DATABASE} OWNER {APP_USER}", database="postgres")
        if "shared_preload_libraries" in settings:
            self.sql(node, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _has_extension(self, name: str) -> bool:
        sharedir = subprocess.run(
            [str(self.bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        return bool(sharedir) and (Path(sharedir) / "extension" / f"{name}.control").exists()
