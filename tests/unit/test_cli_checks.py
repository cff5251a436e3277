"""The pure logic of the check commands: Nagios ranges, thresholds, the verdicts, one line across pods."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
import typer

from fasterdb.contract import (
    ActivityBody,
    DatabaseAge,
    DbHealthBody,
    PoolBody,
    PoolHealth,
    PoolsBody,
    ReplicaBody,
    ReplicasBody,
    SlotBody,
    WaitMs,
    WraparoundBody,
)
from fasterdb_admin.check import PodVerdict, pods_document, pods_line
from fasterdb_admin.client import CliError
from fasterdb_admin.commands import activity, health, pools, replicas, slots, wraparound
from fasterdb_admin.exitcodes import Exit
from fasterdb_admin.nagios import Range, judge, parse_range, perfdata, plain, status_line
from fasterdb_admin.thresholds import human_seconds, in_force, ordered, parse_duration

NOW = "2026-11-29T22:12:47.909Z"


@pytest.mark.parametrize(
    ("text", "start", "end", "inside"),
    [
        ("10", 0, 10, False),
        ("10:", 10, math.inf, False),
        ("~:10", -math.inf, 10, False),
        ("10:20", 10, 20, False),
        ("@10:20", 10, 20, True),
        ("0.5", 0, 0.5, False),
        ("-5:-1", -5, -1, False),
        (" 3 ", 0, 3, False),
    ],
)
def test_nagios_ranges_parse_as_the_plugin_guidelines_say(text: str, start: float, end: float, inside: bool) -> None:
    parsed = parse_range(text)
    assert (parsed.start, parsed.end, parsed.inside) == (start, end, inside)
    assert parsed.text == text.strip()


@pytest.mark.parametrize("text", ["", "abc", "20:10", "~", "1e3", "10::20", "@", "1,5"])
def test_what_is_not_a_nagios_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_range(text)


@pytest.mark.parametrize(
    ("text", "alerting", "quiet"),
    [
        ("10", [-1, 10.5, 11], [0, 5, 10]),
        ("10:", [-1, 9.99], [10, 1e9]),
        ("~:10", [10.01, 11], [-1e9, 10]),
        ("10:20", [9, 21], [10, 15, 20]),
        ("@10:20", [10, 15, 20], [9, 21]),
    ],
)
def test_a_range_alerts_outside_its_ends_or_inside_with_at(
    text: str, alerting: list[float], quiet: list[float]
) -> None:
    r = parse_range(text)
    assert [v for v in alerting if not r.alerts(v)] == []
    assert [v for v in quiet if r.alerts(v)] == []


def test_ranges_describe_themselves_in_the_values_own_units() -> None:
    assert Range.above(16 * 1024**2).describe(lambda v: f"{v / 1024**2:g} MB") == "above 16 MB"
    assert parse_range("30:").describe() == "below 30"
    assert parse_range("1:2").describe() == "outside 1-2"
    assert parse_range("@0:100").describe() == "inside 0-100"
    assert parse_range("@5:").describe() == "at or above 5"
    assert parse_range("~:0.5").describe() == "above 0.5"
    assert Range.above(-3).text == "~:-3"


def test_judge_and_perfdata() -> None:
    warn, crit = Range.above(10), Range.above(20)
    assert [judge(v, warn, crit) for v in (None, 5, 15, 25)] == [Exit.OK, Exit.OK, Exit.WARNING, Exit.CRITICAL]
    assert judge(25, warn, None) == Exit.WARNING and judge(25, None, None) == Exit.OK
    assert plain(1048576.0) == "1048576" and plain(0.000812) == "0.000812" and plain(1e-10) == "0"
    assert perfdata("a'b=c", None, "s", warn, crit) == "'ab_c'=U;10;20;0;"
    assert perfdata("lag", 1.5, "s", None, crit, None, 100) == "'lag'=1.5s;;20;;100"
    assert (
        status_line("X", Exit.WARNING, "two\nlines  here", ["'a'=1;;;0;"]) == "X WARNING - two lines here | 'a'=1;;;0;"
    )


def test_thresholds_in_force_and_the_one_ordering_rule() -> None:
    options = ("--warn-x", "--crit-x")
    assert in_force(None, None, (60.0, 300.0), options) == (60.0, 300.0)
    assert in_force(None, 30.0, (60.0, 300.0), options) == (30.0, 30.0)  # a default warning never passes a crit
    assert in_force(10.0, None, (60.0, 300.0), options) == (10.0, 300.0)
    assert in_force(None, 50, (10, 5), options, below=True) == (50, 50)  # "alert below": the mirror image
    with pytest.raises(typer.BadParameter, match="must not be larger than --crit-x"):
        in_force(400.0, None, (60.0, 300.0), options)  # beyond the default critical one
    with pytest.raises(typer.BadParameter, match="must not be smaller than --crit-x"):
        ordered(2, 5, options, below=True)
    ordered(None, 5, options)
    ordered(5, 5, options)


def test_durations_and_their_human_form() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "1.5m", "5m", "1h", "1d", " 2M ")] == [
        90,
        90,
        90,
        300,
        3600,
        86400,
        120,
    ]
    for bad in ("", "5x", "-1", "1h30m", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [human_seconds(s) for s in (None, 4.24, 372, 7500, 273600)] == ["-", "4.2s", "6m12s", "2h05m", "3d4h"]


def pool_health(name: str, ok: bool = True, latency: float | None = 2.0, error: str | None = None) -> PoolHealth:
    return PoolHealth(name, ok, latency, error)


def test_health_verdict() -> None:
    ok = DbHealthBody("ok", pool_health("primary"), NOW, 0, [pool_health("replica-1", False, None, "timeout")])
    check = health.verdict(ok)
    assert check.code == Exit.OK  # a replica down does not make the database unusable
    assert check.summary() == "primary ok (2.0 ms); replica-1 timeout"
    assert check.perfdata("pod-a/") == ["'pod-a/primary_latency'=0.002s;;;0;", "'pod-a/replica-1_latency'=U;;;0;"]
    assert health.verdict(ok, Range.above(0.001)).code == Exit.WARNING
    assert health.verdict(ok, None, parse_range("@0:1")).code == Exit.CRITICAL
    down = DbHealthBody("unavailable", pool_health("primary", False, None, "connection refused"), NOW, 0)
    assert health.verdict(down).code == Exit.CRITICAL
    assert health.verdict(DbHealthBody("draining", pool_health("primary"), NOW, 0)).code == Exit.CRITICAL


def replica(name: str = "replica-1", lag: int | None = 0, seconds: float | None = 0.0, **kw: Any) -> ReplicaBody:
    fields: dict[str, Any] = {"ok": True, "state": "streaming", "receive_lag_bytes": 0, "error": None, **kw}
    return ReplicaBody(name, fields["ok"], fields["state"], lag, fields["receive_lag_bytes"], seconds, fields["error"])


def test_replica_verdicts() -> None:
    body = ReplicasBody("ok", 16 * 1024**2, 10.0, "0/1", [replica(lag=20 * 1024**2, seconds=3.0)])
    assert replicas.verdict(body, replicas.Limits()).code == Exit.CRITICAL  # over the sidecar's 16 MB
    limits = replicas.Limits(warn_bytes=Range.above(1024**2), crit_bytes=Range.above(1024**3))
    check = replicas.verdict(body, limits)
    assert check.code == Exit.WARNING and check.summary() == "replica-1 streaming lag 20.0 MB/3.0s"
    seconds = replicas.Limits(crit_seconds=Range.above(2), crit_bytes=Range.above(1024**3))
    assert replicas.verdict(body, seconds).code == Exit.CRITICAL  # 3 s behind
    down = ReplicasBody("unavailable", 1, 1.0, None, [replica(lag=None, seconds=None, state="down", error="timeout")])
    assert replicas.verdict(down, replicas.Limits()).code == Exit.CRITICAL
    with pytest.raises(CliError, match="no replicas are configured"):
        replicas.verdict(ReplicasBody("ok", 1, 1.0, None, []), replicas.Limits())


def test_the_replicas_footer_speaks_in_human_sizes() -> None:
    from rich.console import Console

    body = ReplicasBody("ok", 16 * 1024**2, 10.0, "0/1", [replica(lag=20 * 1024**2, seconds=3.0)])
    console = Console(width=200, record=True)
    console.print(replicas.verdict(body, replicas.Limits(warn_seconds=Range.above(5))).table())
    text = console.export_text()
    assert "critical above 16.0 MB or above 10.0s; warning above 5.0s" in text and "20.0 MB" in text
    assert "16777216" not in text


def pool(name: str, role: str, ready: bool) -> PoolBody:
    error = None if ready else "connection refused"
    return PoolBody(name, role, ready, error, 1, 10, 2, 1, 1, 0, 5, 0, 0, WaitMs(0.1, 1.0, 2.0))  # type: ignore[arg-type]


def test_pools_verdict() -> None:
    assert pools.verdict(PoolsBody(NOW, [pool("primary", "primary", True)])).code == Exit.OK
    replica_down = PoolsBody(NOW, [pool("primary", "primary", True), pool("replica-1", "replica", False)])
    assert pools.verdict(replica_down).code == Exit.WARNING
    assert pools.verdict(PoolsBody(NOW, [pool("primary", "primary", False)])).code == Exit.CRITICAL
    assert pools.verdict(replica_down).summary() == (
        "primary ready 1/10 in use, 0 waiting; replica-1 not ready (connection refused)"
    )
    reported = msgspec.structs.replace(pool("primary", "primary", True), source="app", app="shop:web-1:42")
    check = pools.verdict(PoolsBody(NOW, [pool("primary", "primary", True), reported]))
    assert check.summary().endswith("; shop:web-1:42/primary ready 1/10 in use, 0 waiting")
    assert "'shop:web-1:42/primary_in_use'=1;;;0;10" in check.perfdata()


def slot(name: str = "s", active: bool = True, wal_status: str = "reserved", retained: int = 0) -> SlotBody:
    return SlotBody(name, "physical", active, wal_status, None, retained, None, None, None, False, None)


def test_slot_verdicts() -> None:
    warn, crit = Range.above(1024**3), Range.above(10 * 1024**3)
    assert slots.judge_slot(slot(), warn, crit) == (Exit.OK, "")
    assert slots.judge_slot(slot(retained=2 * 1024**3), warn, crit) == (Exit.WARNING, "retains 2.0 GB")
    assert slots.judge_slot(slot(active=False), warn, crit)[0] == Exit.WARNING
    assert slots.judge_slot(slot(wal_status="unreserved"), warn, crit)[0] == Exit.WARNING
    assert slots.judge_slot(slot(wal_status="lost"), warn, crit)[0] == Exit.CRITICAL
    assert slots.judge_slot(slot(retained=11 * 1024**3, active=False), warn, crit)[0] == Exit.CRITICAL


def test_wraparound_verdict_takes_the_larger_ratio() -> None:
    body = WraparoundBody("primary", NOW, [DatabaseAge("a", 10, 10, 0.1, 0.6)], 200_000_000, 400_000_000, 0.1, 0.6)
    check = wraparound.verdict(body, Range.above(0.5), Range.above(0.75))
    assert check.code == Exit.WARNING and check.summary().startswith("a at 60.0% of the wraparound limit")


def activity_body(headroom: int, idle_in_tx: float | None = None) -> ActivityBody:
    return ActivityBody(
        "primary",
        NOW,
        100,
        3,
        0,
        97,
        97 - headroom,
        headroom,
        {},
        [],
        None,
        None,
        idle_in_tx,
        None,
        [],
        [],
        None,
        False,
        0,
    )


def test_activity_verdict_and_the_default_headroom_shares() -> None:
    limits = activity.Limits(60, 300, 600, 3600, 30, 300)
    assert activity.verdict(activity_body(50), limits).code == Exit.OK
    assert activity.verdict(activity_body(9), limits).verdicts["headroom"] == Exit.WARNING  # below 10 % of 97
    assert activity.verdict(activity_body(4), limits).verdicts["headroom"] == Exit.CRITICAL  # below 5 %
    assert activity.verdict(activity_body(50, idle_in_tx=120), limits).code == Exit.WARNING
    given = activity.Limits(60, 300, 600, 3600, 30, 300, warn_headroom=20, crit_headroom=10)
    assert activity.verdict(activity_body(15), given).verdicts["headroom"] == Exit.WARNING


def test_one_nagios_line_across_pods() -> None:
    body = PoolsBody(NOW, [pool("primary", "primary", True)])
    results = [
        PodVerdict("a", Exit.OK, pools.verdict(body)),
        PodVerdict("b", Exit.UNKNOWN, error="cannot reach the sidecar at pod apps/b: timed out"),
        PodVerdict("c", Exit.CRITICAL, pools.verdict(PoolsBody(NOW, [pool("primary", "primary", False)]))),
    ]
    line = pods_line("POOLS", results)
    assert line.startswith("POOLS CRITICAL - a: primary ready 1/10 in use, 0 waiting; b: cannot reach the sidecar")
    assert "'a/primary_in_use'=1;;;0;10" in line and "'c/primary_waiting'=0;;;0;" in line
    assert len(line.splitlines()) == 1
    document = pods_document(results)
    assert [p["exit"] for p in document["pods"]] == ["OK", "UNKNOWN", "CRITICAL"]
    assert "error" in document["pods"][1] and document["pods"][0]["result"].pools[0].name == "primary"
