"""Real faults on the local cluster: replay paused, WAL written, backends killed, servers frozen.

Each helper creates the condition for real (no mocks): lag is WAL generated while replay is
paused, a freeze is SIGSTOP of the postmaster and all its children, a lock is a session holding it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from devtools.cluster import ADMIN_USER, DATABASE, ClusterError, Node, TempCluster, free_port

MB = 1024 * 1024


async def admin_connect(pg: TempCluster, node: Node, application_name: str) -> asyncpg.Connection:
    """An asyncpg connection to ``node`` as the cluster's admin, for what a test asks of the server
    itself (``application_name``: how pg_stat_activity tells it from what is tested)."""
    return await asyncpg.connect(
        host="127.0.0.1",
        port=node.port,
        user=ADMIN_USER,
        password=pg.admin_password,
        database=DATABASE,
        timeout=5,
        server_settings={"application_name": application_name},
    )


def pause_replay(pg: TempCluster, node: Node) -> None:
    """pg_wal_replay_pause() on a replica."""
    pg.sql(node, "SELECT pg_wal_replay_pause()")


def resume_replay(pg: TempCluster, node: Node) -> None:
    """pg_wal_replay_resume() on a replica."""
    pg.sql(node, "SELECT pg_wal_replay_resume()")


def write_wal(pg: TempCluster, megabytes: float) -> int:
    """Write at least ``megabytes`` of WAL on the primary; returns how many bytes were written."""
    pg.sql(pg.primary, "CREATE TABLE IF NOT EXISTS public.walgen (id bigserial, x text)")
    start = pg.sql(pg.primary, "SELECT pg_current_wal_lsn()")
    written = 0
    while written < megabytes * MB:
        rows = "SELECT md5(g::text) || repeat('y', 900) FROM generate_series(1, 1000) g"
        pg.sql(pg.primary, f"INSERT INTO public.walgen (x) {rows}")
        written = int(
            pg.sql(pg.primary, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :'start')", params={"start": start})
        )
    return written


def terminate_backends(pg: TempCluster, node: Node, application_name_like: str = "fasterdb-sidecar%") -> int:
    """pg_terminate_backend() on every backend whose application_name matches; returns how many."""
    out = pg.sql(
        node,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name LIKE :'pattern' AND pid <> pg_backend_pid()",
        params={"pattern": application_name_like},
    )
    return int(out or 0)


def cut_wal_receiver(pg: TempCluster, node: Node) -> None:
    """Cut a replica's WAL receiver for good: primary_conninfo to a closed port, then reload."""
    pg.sql(
        node,
        "ALTER SYSTEM SET primary_conninfo = :'conninfo'",
        params={"conninfo": f"host=127.0.0.1 port={free_port()} user=nobody"},
    )
    pg.sql(node, "SELECT pg_reload_conf()")


def restore_wal_receiver(pg: TempCluster, node: Node) -> None:
    """Undo cut_wal_receiver()."""
    pg.sql(node, "ALTER SYSTEM RESET primary_conninfo")
    pg.sql(node, "SELECT pg_reload_conf()")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the closing parenthesis
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def freeze(node: Node) -> Callable[[], None]:
    """SIGSTOP the server's postmaster and every child (a hung host); returns the thaw (SIGCONT)."""
    postmaster = node.postmaster_pid()
    if postmaster is None:
        raise ClusterError(f"{node.name} is not running")
    os.kill(postmaster, signal.SIGSTOP)  # first: it forks no new child from here on
    for pid in _children(postmaster):
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass  # a backend that ended between the listing and its stop

    def thaw() -> None:
        for pid in [postmaster, *_children(postmaster)]:  # children forked before the stop included
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    return thaw


def thaw_all(node: Node) -> None:
    """SIGCONT the server's postmaster and every child, whoever stopped them (a no-op when none is
    stopped): a test that failed between a freeze and its thaw must not leave the server hung for
    every test after it."""
    postmaster = node.postmaster_pid()
    if postmaster is None:
        return
    for pid in [postmaster, *_children(postmaster)]:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


@contextmanager
def frozen(node: Node) -> Iterator[None]:
    """SIGSTOP the server's postmaster and every child (a hung host), SIGCONT on exit."""
    thaw = freeze(node)
    try:
        yield
    finally:
        thaw()


class Session:
    """A psql session of its own (as the admin user) that stays open: its pid, and what it is told.

    ``ask`` sends statements and waits for one line of output; ``send`` does not wait (for a
    statement that blocks, such as a lock wait). Closing rolls back whatever is open.
    """

    def __init__(self, pg: TempCluster, application: str = "fasterdb-test") -> None:
        command = [str(pg.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
        command += ["-p", str(pg.primary.port), "-U", ADMIN_USER, "-d", DATABASE, "-f", "-"]
        env = dict(os.environ, PGPASSFILE=str(pg.passfile), PGCONNECT_TIMEOUT="5", PGAPPNAME=application)
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self.pid = int(self.ask("SELECT pg_backend_pid();"))

    def send(self, statements: str) -> None:
        """Send without waiting for an answer."""
        self._in.write(statements.rstrip() + "\n")
        self._in.flush()

    def ask(self, statements: str) -> str:
        """Send, then read one line of output (the statements must print exactly one)."""
        self.send(statements)
        line = self._out.readline()
        if not line:
            raise ClusterError(f"the psql session ended: {statements!r}")
        return line.strip()

    def close(self) -> None:
        """Roll back and end the session (killed if it does not end in time)."""
        try:
            self.send("ROLLBACK;")
            self._in.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def row_locked(pg: TempCluster, table: str, row_id: int) -> Iterator[Session]:
    """A session that holds ``FOR UPDATE`` on one row until the block ends (then rolls back)."""
    with Session(pg, "fasterdb-test/locker") as session:
        if session.ask(f"BEGIN; SELECT 'locked' FROM {table} WHERE id = {int(row_id)} FOR UPDATE;") != "locked":
            raise ClusterError(f"could not lock {table} row {row_id}")
        yield session
