"""What the server itself sees: sessions, replication slots, transaction-ID age (one statement each).

Each view is one statement on the pool's monitor connection, under the same deadline as the health
check (db.monitor.run_bounded), so a catalog round costs one query. The query text of other
sessions is never read: it carries secrets. Columns that only newer servers have
(``reserved_connections`` 16+, ``pg_replication_slots.inactive_since`` 17+) are read so that
older servers answer NULL instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from fasterdb.pools.managed import Connection, ManagedPool

from ..db.monitor import Bounded, run_bounded

# One scan of pg_stat_activity, folded on the server: the connections counted by application and
# state, and only the sessions worth naming (the oldest transaction, the longest idle in
# transaction, every lock waiter and what blocks it) as rows. 500 backends cost a few rows, not 500.
ACTIVITY_SQL = """
WITH a AS MATERIALIZED (
  SELECT a.pid, a.state, a.application_name, a.usename, a.client_addr, a.xact_start, a.state_change,
         a.wait_event_type = 'Lock' AS waiting
  FROM pg_stat_activity a
  WHERE a.backend_type = 'client backend'
), named AS MATERIALIZED (
  (SELECT pid FROM a WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL ORDER BY xact_start LIMIT 1)
  UNION
  (SELECT pid FROM a WHERE pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'
   ORDER BY state_change LIMIT 1)
  UNION
  SELECT pid FROM a WHERE waiting
), blocked AS MATERIALIZED (
  SELECT pid, pg_blocking_pids(pid) AS blocked_by FROM a WHERE waiting
), shown AS (
  SELECT pid FROM named
  UNION
  SELECT unnest(blocked_by) FROM blocked  -- the sessions the waiters wait for
)
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
       pg_backend_pid() AS me,
       coalesce((
         SELECT json_agg(g) FROM (
           SELECT coalesce(application_name, '') AS application, state, count(*)::int AS connections
           FROM a GROUP BY 1, 2
         ) g
       ), '[]')::text AS groups,
       coalesce((
         SELECT json_agg(s ORDER BY s.pid) FROM (
           SELECT p.pid, p.state, coalesce(p.application_name, '') AS application,
                  p.usename AS "user", host(p.client_addr) AS client_addr,
                  extract(epoch FROM clock_timestamp() - p.xact_start)::float8 AS xact_seconds,
                  extract(epoch FROM clock_timestamp() - p.state_change)::float8 AS state_seconds,
                  p.waiting,
                  b.blocked_by,
                  CASE WHEN b.pid IS NOT NULL THEN (
                    SELECT extract(epoch FROM clock_timestamp() - min((to_jsonb(l) ->> 'waitstart')::timestamptz))
                    FROM pg_locks l WHERE l.pid = p.pid AND NOT l.granted
                  )::float8 END AS lock_wait_seconds
           FROM a p
           JOIN shown USING (pid)
           LEFT JOIN blocked b USING (pid)
         ) s
       ), '[]')::text AS backends
"""

SLOTS_SQL = """
SELECT coalesce(json_agg(s ORDER BY s.name), '[]')::text FROM (
  SELECT r.slot_name AS name, r.slot_type AS type, r.active, r.wal_status,
         r.safe_wal_size, r.temporary, r.database,
         pg_wal_lsn_diff(
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
           r.restart_lsn
         )::bigint AS retained_bytes,
         extract(epoch FROM clock_timestamp() - (to_jsonb(r) ->> 'inactive_since')::timestamptz)::float8
           AS inactive_seconds,
         age(r.xmin)::bigint AS xmin_age,
         age(r.catalog_xmin)::bigint AS catalog_xmin_age
  FROM pg_replication_slots r
) s
"""

WRAPAROUND_SQL = """
SELECT current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::bigint AS multixact_freeze_max_age,
       coalesce((
         SELECT json_agg(d ORDER BY d.name) FROM (
           SELECT datname AS name, age(datfrozenxid)::bigint AS xid_age,
                  mxid_age(datminmxid)::bigint AS mxid_age, datallowconn AS allows_connections
           FROM pg_database
         ) d
       ), '[]')::text AS databases
"""


class Backend(msgspec.Struct, frozen=True):
    """One client backend as pg_stat_activity shows it (never its query text)."""

    pid: int
    state: str | None  # None: the role may not see other users' sessions (grant pg_monitor)
    application: str
    user: str | None
    client_addr: str | None
    xact_seconds: float | None
    state_seconds: float | None
    waiting: bool | None
    blocked_by: list[int] | None
    lock_wait_seconds: float | None


class Slot(msgspec.Struct, frozen=True):
    """One replication slot."""

    name: str
    type: str
    active: bool
    wal_status: str | None
    safe_wal_size: int | None
    temporary: bool
    database: str | None
    retained_bytes: int | None
    inactive_seconds: float | None
    xmin_age: int | None
    catalog_xmin_age: int | None


class Database(msgspec.Struct, frozen=True):
    """One database's oldest unfrozen transaction ID and multixact ID, as ages."""

    name: str
    xid_age: int
    mxid_age: int
    allows_connections: bool


class Group(msgspec.Struct, frozen=True):
    """How many client backends of one application are in one state."""

    application: str
    state: str | None  # None: the role may not see other users' sessions (grant pg_monitor)
    connections: int


@dataclass(frozen=True)
class Activity:
    """The connection settings, the client backends counted, and the sessions worth naming."""

    max_connections: int
    superuser_reserved: int
    reserved: int
    me: int  # the pid of the connection that asked
    groups: list[Group]  # every client backend, counted by application and state
    backends: list[Backend]  # the oldest transaction, the longest idle in transaction, lock waiters and blockers


@dataclass(frozen=True)
class Wraparound:
    """Transaction-ID ages of every database, beside the autovacuum freeze settings."""

    freeze_max_age: int
    multixact_freeze_max_age: int
    databases: list[Database]


async def _activity(conn: Connection) -> Activity:
    row = await conn.fetchrow(ACTIVITY_SQL)
    groups = msgspec.json.decode(row["groups"], type=list[Group])
    backends = msgspec.json.decode(row["backends"], type=list[Backend])
    return Activity(row["max_connections"], row["superuser_reserved"], row["reserved"], row["me"], groups, backends)


async def _slots(conn: Connection) -> list[Slot]:
    return msgspec.json.decode(await conn.fetchval(SLOTS_SQL), type=list[Slot])


async def _wraparound(conn: Connection) -> Wraparound:
    row = await conn.fetchrow(WRAPAROUND_SQL)
    databases = msgspec.json.decode(row["databases"], type=list[Database])
    return Wraparound(row["freeze_max_age"], row["multixact_freeze_max_age"], databases)


async def fetch_activity(pool: ManagedPool, deadline: float) -> Bounded[Activity]:
    """Sessions of the pool's server, within ``deadline`` (never raises)."""
    return await run_bounded(pool, deadline, _activity)


async def fetch_slots(pool: ManagedPool, deadline: float) -> Bounded[list[Slot]]:
    """Replication slots of the pool's server, within ``deadline`` (never raises)."""
    return await run_bounded(pool, deadline, _slots)


async def fetch_wraparound(pool: ManagedPool, deadline: float) -> Bounded[Wraparound]:
    """Transaction-ID ages of the pool's server, within ``deadline`` (never raises)."""
    return await run_bounded(pool, deadline, _wraparound)
