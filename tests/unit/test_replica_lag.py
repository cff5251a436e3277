"""The lag arithmetic without a database: positions in, lag and state out."""

from __future__ import annotations

import time

import pytest

from fasterdb.lsn import format_lsn, parse_lsn
from fasterdb.pools.databases import Databases
from fasterdb_sidecar.db.monitor import Bounded
from fasterdb_sidecar.replication.lag import LagMeter, ReplicaLag, Snapshot, Thresholds, evaluate
from fasterdb_sidecar.replication.sql import ReplicaPosition


def _fresh() -> LagMeter:
    return LagMeter(Databases.__new__(Databases), deadline=1.0, ttl=1.0)


def pos(
    replay: int,
    *,
    receive: int | None = None,
    ts: float | None = None,
    paused: bool = False,
    streaming: bool = True,
    in_recovery: bool = True,
) -> Bounded[ReplicaPosition]:
    return Bounded(
        ReplicaPosition(in_recovery, receive if receive is not None else replay, replay, ts, paused, streaming),
        None,
        None,
        1.0,
    )


def test_lsn_round_trip() -> None:
    assert parse_lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert parse_lsn(None) is None and format_lsn(None) is None


def test_caught_up_on_an_idle_primary_is_zero_seconds() -> None:
    m = _fresh()
    now = time.time()
    hour_ago = now - 3600  # last commit an hour ago: now() - replay_ts would say 3600 s
    lag = m._judge("r", pos(1000, ts=hour_ago), 1000, None, now)
    assert (lag.state, lag.lag_bytes, lag.lag_seconds, lag.error) == ("streaming", 0, 0.0, None)


def test_idle_then_write_is_not_a_false_alarm() -> None:
    m = _fresh()
    now = time.time()
    m._remember(now - 0.5, 1000)  # half a second ago the primary was where the replica is now
    lag = m._judge("r", pos(1000, ts=now - 3600), 1500, None, now)
    assert lag.lag_bytes == 500
    assert lag.lag_seconds is not None and 0.4 < lag.lag_seconds < 0.7
    assert lag.state == "streaming"


def test_paused_replica_lag_grows_from_the_last_replayed_commit() -> None:
    m = _fresh()
    now = time.time()
    m._remember(now - 30, 1000)
    m._remember(now - 20, 5000)
    lag = m._judge("r", pos(1000, receive=9000, ts=now - 25, paused=True), 9000, None, now)
    assert lag.state == "replay_paused"
    assert (lag.lag_bytes, lag.receive_lag_bytes) == (8000, 0)
    assert lag.lag_seconds == pytest.approx(25, abs=0.1)  # later of replay_ts (-25) and last seen (-30)


def test_states() -> None:
    m = _fresh()
    now = time.time()
    assert m._judge("r", Bounded(None, "connection refused", "x", None), 10, None, now).state == "down"
    promoted = Bounded(ReplicaPosition(False, 10, 10, None, False, False, server="s2"), None, None, 1.0)
    split = m._judge("r", promoted, 10, None, now, writer="s1")  # another server accepts writes too
    assert (split.state, split.error) == (
        "split_brain",
        "split brain: out of recovery while the primary accepts writes",
    )
    assert m._judge("r", promoted, 10, None, now, writer="s2").state == "not_replica"  # the DSN reaches the primary
    assert m._judge("r", promoted, None, "timeout", now).state == "not_replica"  # no primary known to write
    cut = m._judge("r", pos(10, streaming=False), 20, None, now)
    assert cut.state == "disconnected" and cut.error == "wal receiver not streaming"
    m._remember(now - 5, 10)
    assert m._judge("r", pos(10, ts=now - 5), 20, None, now).state == "catching_up"
    unknown = m._judge("r", pos(10), None, "connection refused", now)
    assert unknown.lag_bytes is None and unknown.error == "lag unknown: primary connection refused"


def test_failover_resets_history() -> None:
    m = _fresh()
    m._remember(1.0, 5000)
    m._remember(2.0, 100)  # the new primary is at a lower position
    assert list(m._lsns) == [100]


def test_evaluate_thresholds_and_status() -> None:
    snap = Snapshot(
        2000,
        None,
        [
            ReplicaLag("a", "streaming", 0, 0, 0.0, None),
            ReplicaLag("b", "replay_paused", 1500, 0, 3.0, None),
        ],
        time.time(),
    )
    status, judged = evaluate(snap, Thresholds(1000, 10))
    assert status == "lagging" and [j.ok for j in judged] == [True, False]
    assert evaluate(snap, Thresholds(2000, 10))[0] == "ok"
    assert evaluate(snap, Thresholds(2000, 2))[0] == "lagging"
    assert evaluate(snap, Thresholds(0, 0), only="a")[0] == "ok"
    down = Snapshot(None, "timeout", [ReplicaLag("a", "down", None, None, None, "timeout")], time.time())
    status, judged = evaluate(down, Thresholds(1000, 10))
    assert status == "unavailable" and [j.ok for j in judged] == [False]


def test_no_samples_over_a_gap_means_unknown_not_old() -> None:
    """A primary frozen for 15 s: its position unread in between, the replica 72 bytes behind after."""
    m = _fresh()
    now = time.time()
    m._remember(now - 16.0, 1000)  # last sample before the freeze: the replica was caught up
    for t in range(15):
        m._failures.append(now - 15.0 + t)  # every read during the freeze failed
    m._remember(now - 0.2, 1072)  # thawed: the primary moved on by 72 bytes
    lag = m._judge("r", pos(1000, ts=now - 16.5), 1072, None, now)
    assert lag.lag_seconds is not None and lag.lag_seconds < 0.5  # not 16 s
    assert lag.state == "streaming"
    # Without the failures (dense samples), the same positions mean the replica is 16 s behind.
    m2 = _fresh()
    m2._remember(now - 16.0, 1000)
    m2._remember(now - 0.2, 1072)
    m2.max_gap = 60.0
    assert (m2._judge("r", pos(1000, ts=now - 16.5), 1072, None, now).lag_seconds or 0) > 15
