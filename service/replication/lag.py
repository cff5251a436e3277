"""Replica lag: measured once per cache window, judged per request against its thresholds.

Bytes: ``lag_bytes`` = primary ``pg_current_wal_lsn()`` − replica ``pg_last_wal_replay_lsn()``;
``receive_lag_bytes`` the same with ``pg_last_wal_receive_lsn()``.

Seconds (no heartbeat writes): a replica whose replay position has reached the primary's current
position is 0 s behind, however long the primary has been idle — unlike
``now() - pg_last_xact_replay_timestamp()``, which grows forever on an idle primary. A replica
that is behind has been behind at most since the later of

* the commit time of the last transaction it replayed (``pg_last_xact_replay_timestamp()``), and
* the last time the sidecar saw the primary at or below the replica's replay position (the
  meter keeps a short history of the primary's positions, one per measurement).

``lag_seconds`` is ``now`` minus that moment: exact for a replica that fell behind while being
watched, and never the idle-primary false alarm. (Clock skew between the primary and the sidecar
host enters through the replay timestamp, as with every seconds-based lag measure.)
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

from fasterdb.pools.databases import Databases

from ..db.monitor import Bounded
from ..single_flight import SingleFlight
from .sql import PrimaryPosition, ReplicaPosition, read_primary, read_replica

State = Literal["streaming", "catching_up", "replay_paused", "disconnected", "down", "not_replica", "split_brain"]
# A replica this far behind in time, with replay running, is "catching_up" rather than "streaming".
CATCHING_UP_SECONDS = 1.0
HISTORY = 4096


@dataclass(frozen=True)
class ReplicaLag:
    """What was measured for one replica (no thresholds applied)."""

    name: str
    state: State
    lag_bytes: int | None
    receive_lag_bytes: int | None
    lag_seconds: float | None
    error: str | None  # why the replica is unusable or its lag unknown; None when measurable
    replay_lsn: int | None = None  # what it had replayed (read-after tokens compare against this)


@dataclass(frozen=True)
class Snapshot:
    """One measurement of the primary and every replica."""

    primary_lsn: int | None
    primary_error: str | None
    replicas: list[ReplicaLag]
    measured_at: float


@dataclass(frozen=True)
class Thresholds:
    """Maximum lag for a replica to count as ok."""

    max_lag_bytes: int
    max_lag_seconds: float


def unsettled(snapshot: Snapshot, defaults: Thresholds | None = None) -> bool:
    """Whether a measurement shows a fault that may end any moment (re-measured soon, not per TTL).

    An error, a replica not streaming (paused, catching up, disconnected, ...), or one over the
    default thresholds: what a probe says 503 for, and must stop saying once it is over.
    """
    for r in snapshot.replicas:
        if r.error is not None or r.state != "streaming":
            return True
        if defaults is not None and (
            (r.lag_bytes or 0) > defaults.max_lag_bytes or (r.lag_seconds or 0) > defaults.max_lag_seconds
        ):
            return True
    return snapshot.primary_error is not None


class LagMeter:
    """Measures replica lag behind a single-flight cache; keeps the primary's position history."""

    def __init__(
        self,
        databases: Databases,
        deadline: float,
        ttl: float,
        max_gap: float = 15.0,
        defaults: Thresholds | None = None,
    ) -> None:
        self.databases = databases
        self.deadline = deadline
        # Samples of the primary's position further apart than this say nothing about when the
        # primary moved in between (see _behind_since).
        self.max_gap = max_gap
        self._cache: SingleFlight[Snapshot] = SingleFlight(
            self._measure, ttl, failed=lambda s: unsettled(s, defaults), ahead=True
        )
        self._times: deque[float] = deque(maxlen=HISTORY)  # when each primary position was read
        self._lsns: deque[int] = deque(maxlen=HISTORY)  # non-decreasing, except after a failover
        self._failures: deque[float] = deque(maxlen=HISTORY)  # when reading the primary's position failed

    async def snapshot(self, max_age: float | None = None) -> Snapshot:
        """The current measurement: cached for the TTL, or no older than ``max_age`` seconds."""
        return await self._cache.get(max_age)

    def fresh(self) -> Snapshot | None:
        """The cached measurement when ``snapshot()`` would answer it without measuring, else None
        (synchronous: no coroutine on the probe's hot path)."""
        return self._cache.peek()

    def last(self) -> Snapshot | None:
        """The most recent measurement without running one (for metrics and job throttling)."""
        return self._cache.cached

    async def _measure(self) -> Snapshot:
        primary_task = asyncio.ensure_future(read_primary(self.databases.primary, self.deadline))
        replica_results = await asyncio.gather(*(read_replica(pool, self.deadline) for pool in self.databases.replicas))
        primary = await primary_task
        now = time.time()
        primary_lsn, primary_error = self._primary_lsn(primary)
        if primary_lsn is not None:
            self._remember(now, primary_lsn)
        else:
            self._failures.append(now)
        # The server that accepts writes now (None when the primary is unknown or read-only).
        writer = primary.value.server if primary.value is not None and primary_lsn is not None else None
        replicas = [
            self._judge(pool.name, result, primary_lsn, primary_error, now, writer)
            for pool, result in zip(self.databases.replicas, replica_results, strict=True)
        ]
        return Snapshot(primary_lsn, primary_error, replicas, now)

    @staticmethod
    def _primary_lsn(primary: Bounded[PrimaryPosition]) -> tuple[int | None, str | None]:
        if primary.error is not None or primary.value is None:
            return None, primary.error or "unknown"
        if primary.value.in_recovery:
            return None, "not primary"
        return primary.value.lsn, None

    def _remember(self, now: float, lsn: int) -> None:
        if self._lsns and lsn < self._lsns[-1]:  # a new primary (failover): old history is void
            self._times.clear()
            self._lsns.clear()
        self._times.append(now)
        self._lsns.append(lsn)

    def _behind_since(self, position: int) -> float | None:
        """Since when the history proves a replica at ``position`` to be behind, at the earliest.

        The primary was last seen at or below ``position`` at t1 and first seen beyond it at t2.
        Normally t1 is the answer (at most one sampling interval early). But when reading the
        primary failed between the two (it was frozen or unreachable), or the samples are more
        than ``max_gap`` apart, the history cannot say when in between the primary moved on:
        then only t2 is supported — no samples over a gap means unknown, not old.
        """
        index = bisect.bisect_right(self._lsns, position)
        if index == 0:
            return None  # never seen at or below: no evidence of delay
        seen_at = self._times[index - 1]
        if index == len(self._times):
            return seen_at
        passed_at = self._times[index]
        failed = bisect.bisect_right(self._failures, seen_at)
        if passed_at - seen_at > self.max_gap or (failed < len(self._failures) and self._failures[failed] < passed_at):
            return passed_at
        return seen_at

    def _judge(
        self,
        name: str,
        result: Bounded[ReplicaPosition],
        primary_lsn: int | None,
        primary_error: str | None,
        now: float,
        writer: str | None = None,
    ) -> ReplicaLag:
        if result.error is not None or result.value is None:
            return ReplicaLag(name, "down", None, None, None, result.error or "unknown")
        pos = result.value
        if not pos.in_recovery:
            if writer is not None and pos.server == writer:
                # After a failover the replica's DSN reaches the new primary itself.
                return ReplicaLag(name, "not_replica", None, None, None, "promoted: this is the primary now")
            if primary_lsn is not None:
                # Two servers accept writes: a promoted replica while the primary still runs.
                reason = "split brain: out of recovery while the primary accepts writes"
                return ReplicaLag(name, "split_brain", None, None, None, reason)
            return ReplicaLag(name, "not_replica", None, None, None, "not replica")
        lag_bytes = receive_lag = lag_seconds = None
        if primary_lsn is not None and pos.replay_lsn is not None:
            lag_bytes = max(0, primary_lsn - pos.replay_lsn)
            if pos.receive_lsn is not None:
                receive_lag = max(0, primary_lsn - pos.receive_lsn)
            lag_seconds = 0.0 if lag_bytes == 0 else self._seconds_behind(pos, now)
        if pos.paused:
            state: State = "replay_paused"
        elif not pos.receiver_streaming:
            state = "disconnected"
        elif lag_seconds is not None and lag_seconds >= CATCHING_UP_SECONDS:
            state = "catching_up"
        else:
            state = "streaming"
        error = None
        if state == "disconnected":
            error = "wal receiver not streaming"
        elif primary_lsn is None:
            error = f"lag unknown: primary {primary_error}"
        return ReplicaLag(name, state, lag_bytes, receive_lag, lag_seconds, error, pos.replay_lsn)

    def _seconds_behind(self, pos: ReplicaPosition, now: float) -> float:
        behind_since = self._behind_since(pos.replay_lsn) if pos.replay_lsn is not None else None
        bounds = [t for t in (pos.replay_ts, behind_since) if t is not None]
        if not bounds:
            return 0.0  # nothing replayed since start and never seen caught up: no evidence of delay
        return round(max(0.0, now - max(bounds)), 3)


@dataclass(frozen=True)
class Judgement:
    """One replica's measurement against the thresholds."""

    lag: ReplicaLag
    ok: bool


def evaluate(
    snapshot: Snapshot, thresholds: Thresholds, only: str | None = None
) -> tuple[Literal["ok", "lagging", "unavailable"], list[Judgement]]:
    """Judge a snapshot: the overall status and each (or the ``only``) replica's verdict.

    ``unavailable`` when some replica's lag is unknown or it cannot serve (down, disconnected, not
    a replica, split brain), else ``lagging`` when one is over a threshold, else ``ok``.
    """
    rows, statuses = [], set()
    for lag in snapshot.replicas:
        if only is not None and lag.name != only:
            continue
        if lag.error is None and lag.lag_bytes is not None and lag.lag_seconds is not None:
            ok = lag.lag_bytes <= thresholds.max_lag_bytes and lag.lag_seconds <= thresholds.max_lag_seconds
            statuses.add("ok" if ok else "lagging")
        else:
            ok = False
            statuses.add("unavailable")
        rows.append(Judgement(lag, ok))
    status: Literal["ok", "lagging", "unavailable"] = (
        "unavailable" if "unavailable" in statuses else "lagging" if "lagging" in statuses else "ok"
    )
    return status, rows
