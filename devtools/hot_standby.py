"""A primary with streaming replicas (hot standbys), each through its own physical slot."""

from __future__ import annotations

import time

from devtools.cluster import ADMIN_USER, TempCluster
from devtools.postgres import ClusterError, Node, free_port


class HotStandbyCluster(TempCluster):
    """A primary and ``replicas`` streaming replicas (hot standbys), each through its own slot."""

    def __init__(self, replicas: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.replicas = replicas

    def start(self) -> None:
        """Start the primary, then clone and start every replica and wait until all stream."""
        super().start()
        try:
            for i in range(1, self.replicas + 1):
                self.add_replica(f"replica-{i}")
            self.wait_streaming()
        except BaseException:
            self.destroy()
            raise

    def add_replica(self, name: str) -> Node:
        """pg_basebackup a new replica of the primary, with its own slot, and start it."""
        slot = name.replace("-", "_")
        node = Node(name, self.base_dir / name, free_port(), self.base_dir / f"{name}.log", slot)
        self._clone(node, self.primary)
        self.replica_nodes.append(node)
        self.start_node(node)
        return node

    def rebuild_standby(self, node: Node, upstream: Node) -> Node:
        """Rebuild a stopped server (an old primary after a failover, diverged or not) as a standby
        of ``upstream``: its data directory replaced by a fresh clone, same port, a slot of its own."""
        if self.is_running(node):
            raise ClusterError(f"{node.name} still runs: stop it before rebuilding it")
        self.run(["rm", "-rf", str(node.datadir)])
        slot = f"{node.name.replace('-', '_')}_rebuilt"
        rebuilt = Node(node.name, node.datadir, node.port, node.logfile, slot)
        self._clone(rebuilt, upstream)
        self.start_node(rebuilt)
        return rebuilt

    def _clone(self, node: Node, upstream: Node) -> None:
        """pg_basebackup ``upstream`` into the node's directory and configure it as its standby."""
        slot = node.slot or node.name.replace("-", "_")
        self.run(
            [
                str(self.bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(upstream.port),
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
            ]
        )
        (node.datadir / "standby.signal").touch()
        self.chown(node.datadir / "standby.signal")
        self.append_conf(
            node,
            {
                "port": str(node.port),
                "primary_conninfo": f"'{self.conninfo(upstream, node.name)}'",
                "primary_slot_name": f"'{slot}'",
            },
        )

    def wait_streaming(self, timeout: float = 30.0) -> None:
        """Wait until every replica streams from the primary."""
        deadline = time.monotonic() + timeout
        want = len(self.replica_nodes)
        while True:
            got = int(self.sql(self.primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"))
            if got >= want:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"only {got} of {want} replicas streaming after {timeout:.0f}s")
            time.sleep(0.05)
