"""SQL for replication positions: the primary's current WAL LSN and each replica's receive/replay state."""

from __future__ import annotations

from dataclasses import dataclass

from fasterdb.lsn import parse_lsn
from fasterdb.pools.managed import Connection, ManagedPool

from ..db.monitor import Bounded, run_bounded

# Which server answered: two DSNs may reach the same one (after a failover the replica's DSN
# can point at the new primary). The start time of its postmaster and its port tell servers apart
# (a primary and its replicas share the system identifier). The configured port, not the
# connection's: over a Unix socket inet_server_port() is NULL, and one server reached by socket and
# by TCP must not look like two (the split-brain fence counts writable servers).
SERVER_SQL = "extract(epoch FROM pg_postmaster_start_time())::text || '/' || current_setting('port')"

# pg_current_wal_lsn() fails on a server in recovery; ask for the role in the same statement.
PRIMARY_SQL = f"""
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS lsn,
       {SERVER_SQL} AS server
"""

# pg_stat_wal_receiver shows its row (status) to roles with pg_read_all_stats, e.g. pg_monitor.
REPLICA_SQL = f"""
SELECT pg_is_in_recovery() AS in_recovery,
       {SERVER_SQL} AS server,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS replay_ts,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause_state,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver_status
"""


@dataclass(frozen=True)
class PrimaryPosition:
    """Where the primary's WAL is (None when it can't be read)."""

    lsn: int | None
    in_recovery: bool | None
    server: str | None = None  # which server answered (see SERVER_SQL)


@dataclass(frozen=True)
class ReplicaPosition:
    """What one replica has received and replayed."""

    in_recovery: bool
    receive_lsn: int | None
    replay_lsn: int | None
    replay_ts: float | None  # commit time (epoch) of the last replayed transaction
    paused: bool
    receiver_streaming: bool
    server: str | None = None  # which server answered (see SERVER_SQL)


async def _primary(conn: Connection) -> PrimaryPosition:
    row = await conn.fetchrow(PRIMARY_SQL)
    return PrimaryPosition(parse_lsn(row["lsn"]), row["in_recovery"], row["server"])


async def _replica(conn: Connection) -> ReplicaPosition:
    row = await conn.fetchrow(REPLICA_SQL)
    return ReplicaPosition(
        in_recovery=row["in_recovery"],
        receive_lsn=parse_lsn(row["receive_lsn"]),
        replay_lsn=parse_lsn(row["replay_lsn"]),
        replay_ts=row["replay_ts"],
        paused=row["pause_state"] in ("paused", "pause requested"),
        receiver_streaming=row["receiver_status"] == "streaming",
        server=row["server"],
    )


async def read_primary(pool: ManagedPool, deadline: float) -> Bounded[PrimaryPosition]:
    """The primary's current WAL position, under a hard deadline."""
    return await run_bounded(pool, deadline, _primary)


async def read_replica(pool: ManagedPool, deadline: float) -> Bounded[ReplicaPosition]:
    """A replica's receive/replay positions and WAL receiver state, under a hard deadline."""
    return await run_bounded(pool, deadline, _replica)


# The split-brain fence: is this server writable (out of recovery and not read-only), and which is it?
ROLE_SQL = f"""
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only') = 'on' AS read_only,
       {SERVER_SQL} AS server
"""

# Replication acknowledgement: where the primary's WAL insert position is, and how far the
# ``$1``-th furthest physical standby has flushed (logical walsenders confirm nothing of ours).
# pg_stat_get_wal_senders() is what pg_stat_replication shows without its join to every backend's
# status (pg_stat_get_activity): the same rows at about a tenth less of the primary's CPU per
# transfer, on a query that runs up to 2,000 times a second.
ACK_SQL = """
WITH standby AS (
  SELECT r.flush_lsn FROM pg_stat_get_wal_senders() r
  WHERE r.flush_lsn IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')
)
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_insert_lsn()::text END AS insert_lsn,
       current_setting('wal_block_size')::int AS block_size,
       (SELECT count(*) FROM standby) AS standbys,
       (SELECT min(flush_lsn) FROM (SELECT flush_lsn FROM standby ORDER BY flush_lsn DESC LIMIT $1) top)::text
         AS confirmed_lsn
"""


@dataclass(frozen=True)
class ServerRole:
    """One server as the fence sees it."""

    writable: bool
    server: str  # which server answered (see SERVER_SQL)


@dataclass(frozen=True)
class AckPosition:
    """The primary's WAL insert position and what its standbys have flushed (one round of the waiter)."""

    writable: bool
    insert_lsn: int | None
    block_size: int
    standbys: int
    confirmed_lsn: int | None  # the required number of standbys have flushed at least this far
    address: object  # the connection's peer: the server this round asked


def peer(conn: Connection) -> object:
    """The address a connection reached (host and port, or the socket path): tells servers apart
    without a round trip."""
    return getattr(conn, "_addr", None)


async def _role(conn: Connection) -> ServerRole:
    row = await conn.fetchrow(ROLE_SQL)
    return ServerRole(not row["in_recovery"] and not row["read_only"], row["server"])


async def read_role(pool: ManagedPool, deadline: float) -> Bounded[ServerRole]:
    """Whether the pool's server takes writes, and which server it is, under a hard deadline."""
    return await run_bounded(pool, deadline, _role)


async def read_ack(conn: Connection, standbys: int) -> AckPosition:
    """The primary's WAL position and how far ``standbys`` standbys have flushed, on ``conn``."""
    row = await conn.fetchrow(ACK_SQL, standbys)
    confirmed = parse_lsn(row["confirmed_lsn"]) if row["standbys"] >= standbys else None
    return AckPosition(
        not row["in_recovery"],
        parse_lsn(row["insert_lsn"]),
        row["block_size"],
        row["standbys"],
        confirmed,
        peer(conn),
    )
