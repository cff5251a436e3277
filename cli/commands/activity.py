"""``fasterdb-admin activity``: the server's sessions judged — idle in transaction, old transactions,
lock waits, and the connections left (/db/activity)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import ActivityBody

from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata, status_line
from ..options import Target, sidecar_options
from ..output import CheckOutput, emit, make_table, state_style
from ..thresholds import duration, human_seconds, ordered

SERVICE = "ACTIVITY"
# Defaults: minutes idle in a transaction hold locks and block vacuum; an hour-old transaction
# holds back vacuum on every table; 30 s in a lock queue is an incident in OLTP.
DEFAULTS = {"idle_in_tx": (60.0, 300.0), "oldest_xact": (600.0, 3600.0), "lock_wait": (30.0, 300.0)}
HEADROOM_SHARE = (0.10, 0.05)  # default headroom thresholds: this share of the usable connections


@dataclass(frozen=True)
class Limits:
    """Alert above these seconds; alert when the headroom falls below these counts (None: default)."""

    warn_idle_in_tx: float
    crit_idle_in_tx: float
    warn_oldest_xact: float
    crit_oldest_xact: float
    warn_lock_wait: float
    crit_lock_wait: float
    warn_headroom: int | None = None
    crit_headroom: int | None = None


@dataclass(frozen=True)
class ActivityCheck:
    """The sidecar's answer, the ranges in force and the verdicts."""

    body: ActivityBody
    ranges: dict[str, tuple[Range, Range]]
    verdicts: dict[str, Exit]
    code: Exit


def _headroom_ranges(body: ActivityBody, limits: Limits) -> tuple[Range, Range]:
    warn = limits.warn_headroom if limits.warn_headroom is not None else math.ceil(body.usable * HEADROOM_SHARE[0])
    crit = limits.crit_headroom if limits.crit_headroom is not None else math.ceil(body.usable * HEADROOM_SHARE[1])
    # Nagios "N:" alerts below N.
    return Range(f"{warn}:", float(warn), math.inf), Range(f"{crit}:", float(crit), math.inf)


def fetch(client: SidecarClient, limits: Limits, pool: str | None) -> tuple[Exit, ActivityCheck]:
    """Ask /db/activity and judge it."""
    # The token is optional here: with it, the sidecar adds user names and client addresses.
    reply = client.request("GET", "/db/activity", params={"pool": pool}, admin=True)
    if reply.status != 200:
        raise CliError(f"/db/activity: {reply.error_message}", Exit.CRITICAL if reply.status == 503 else Exit.UNKNOWN)
    body = reply.decode(ActivityBody)
    ranges = {
        "idle_in_tx": (Range.above(limits.warn_idle_in_tx), Range.above(limits.crit_idle_in_tx)),
        "oldest_xact": (Range.above(limits.warn_oldest_xact), Range.above(limits.crit_oldest_xact)),
        "lock_wait": (Range.above(limits.warn_lock_wait), Range.above(limits.crit_lock_wait)),
        "headroom": _headroom_ranges(body, limits),
    }
    values = {
        "idle_in_tx": body.idle_in_transaction_max_seconds,
        "oldest_xact": body.oldest_xact_seconds,
        "lock_wait": body.longest_lock_wait_seconds,
        "headroom": float(body.headroom),
    }
    verdicts = {name: judge(values[name], *ranges[name]) for name in ranges}
    code = worst(list(verdicts.values()))
    return code, ActivityCheck(body, ranges, verdicts, code)


def _who(session: Any) -> str:
    return f"pid {session.pid}, {session.application or 'no application_name'}"


def summary(check: ActivityCheck) -> str:
    """One line: connections, then what is wrong or notable."""
    body = check.body
    parts = [f"{body.connections}/{body.usable} connections (headroom {body.headroom})"]
    if body.oldest_idle_in_transaction is not None:
        idle = body.oldest_idle_in_transaction
        parts.append(f"idle in transaction {human_seconds(idle.seconds)} ({_who(idle)})")
    if body.oldest_xact is not None:
        parts.append(f"oldest transaction {human_seconds(body.oldest_xact.seconds)} ({_who(body.oldest_xact)})")
    if body.lock_waiters:
        blockers = ", ".join(str(b.pid) for b in body.blockers) or "?"
        parts.append(
            f"{len(body.lock_waiters)} waiting for a lock (longest {human_seconds(body.longest_lock_wait_seconds)}, "
            f"blocked by pid {blockers})"
        )
    if body.unknown_states:
        parts.append(f"{body.unknown_states} sessions not visible (grant pg_monitor)")
    return "; ".join(parts)


def nagios_line(check: ActivityCheck) -> str:
    """``ACTIVITY <STATE> - summary | perfdata``."""
    body, r = check.body, check.ranges
    perf = [
        perfdata("connections", body.connections, "", None, None, 0, body.usable),
        perfdata("headroom", body.headroom, "", *r["headroom"], 0, body.usable),
        perfdata("idle_in_transaction_seconds", body.idle_in_transaction_max_seconds or 0, "s", *r["idle_in_tx"]),
        perfdata("oldest_xact_seconds", body.oldest_xact_seconds or 0, "s", *r["oldest_xact"]),
        perfdata("lock_waiters", len(body.lock_waiters)),
        perfdata("lock_wait_seconds", body.longest_lock_wait_seconds or 0, "s", *r["lock_wait"]),
    ]
    return status_line(SERVICE, check.code, summary(check), perf)


def table(check: ActivityCheck) -> Group:
    """Verdicts, connections by state and application, and the sessions that matter."""
    body = check.body
    v = check.verdicts
    verdicts = make_table(
        None,
        ["check", "value", "warning", "critical", "verdict"],
        [
            ["headroom", body.headroom, *(x.text for x in check.ranges["headroom"]), _verdict(v["headroom"])],
            [
                "idle in transaction",
                human_seconds(body.idle_in_transaction_max_seconds),
                *(human_seconds(x.end) for x in check.ranges["idle_in_tx"]),
                _verdict(v["idle_in_tx"]),
            ],
            [
                "oldest transaction",
                human_seconds(body.oldest_xact_seconds),
                *(human_seconds(x.end) for x in check.ranges["oldest_xact"]),
                _verdict(v["oldest_xact"]),
            ],
            [
                "longest lock wait",
                human_seconds(body.longest_lock_wait_seconds),
                *(human_seconds(x.end) for x in check.ranges["lock_wait"]),
                _verdict(v["lock_wait"]),
            ],
        ],
    )
    apps = make_table(
        None,
        ["application", "connections", "by state"],
        [[a.application or "(none)", a.connections, _states(a.by_state)] for a in body.by_application],
    )
    parts: list[Any] = [
        Text(f"activity on {body.pool}: {check.code.name}", style=state_style(check.code.name)),
        Text(
            f"{body.connections} of {body.usable} usable connections (max_connections {body.max_connections}, "
            f"reserved {body.superuser_reserved_connections}+{body.reserved_connections}); by state: "
            f"{_states(body.by_state)}"
        ),
        verdicts,
        apps,
    ]
    if body.lock_waiters:
        parts.append(
            make_table(
                "lock waits",
                ["pid", "application", "waiting", "blocked by"],
                [
                    [w.pid, w.application, human_seconds(w.waiting_seconds), ", ".join(map(str, w.blocked_by))]
                    for w in body.lock_waiters
                ],
            )
        )
        parts.append(
            make_table(
                "blockers",
                ["pid", "application", "state", "transaction age", "blocking"],
                [[b.pid, b.application, b.state, human_seconds(b.xact_seconds), b.blocking] for b in body.blockers],
            )
        )
    if body.unknown_states:
        parts.append(Text(f"{body.unknown_states} sessions' state is hidden: grant pg_monitor to the sidecar's role"))
    parts.append(Text(f"collected at {body.collected_at}; query text is never shown", style="dim"))
    return Group(*parts)


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{state} {count}" for state, count in states.items())


def _verdict(code: Exit) -> Text:
    return Text(code.name, style=state_style(code.name))


def as_json(check: object) -> object:
    """The sidecar's body plus the verdicts and the ranges in force."""
    if not isinstance(check, ActivityCheck):
        return check
    document: dict[str, Any] = msgspec.to_builtins(check.body)
    document["check"] = check.code.name
    document["checks"] = {
        name: {"verdict": check.verdicts[name].name, "warning": warn.text, "critical": crit.text}
        for name, (warn, crit) in check.ranges.items()
    }
    return document


@sidecar_options(output=CheckOutput, token=True)
def activity(
    target: Target,
    warn_idle_in_tx: Annotated[
        str | None, typer.Option("--warn-idle-in-tx", metavar="DUR", help="WARNING above (default 1m).")
    ] = None,
    crit_idle_in_tx: Annotated[
        str | None, typer.Option("--crit-idle-in-tx", metavar="DUR", help="CRITICAL above (default 5m).")
    ] = None,
    warn_oldest_xact: Annotated[
        str | None, typer.Option("--warn-oldest-xact", metavar="DUR", help="WARNING above (default 10m).")
    ] = None,
    crit_oldest_xact: Annotated[
        str | None, typer.Option("--crit-oldest-xact", metavar="DUR", help="CRITICAL above (default 1h).")
    ] = None,
    warn_lock_wait: Annotated[
        str | None, typer.Option("--warn-lock-wait", metavar="DUR", help="WARNING above (default 30s).")
    ] = None,
    crit_lock_wait: Annotated[
        str | None, typer.Option("--crit-lock-wait", metavar="DUR", help="CRITICAL above (default 5m).")
    ] = None,
    warn_headroom: Annotated[
        int | None,
        typer.Option("--warn-headroom", min=0, metavar="N", help="WARNING below N free connections (default 10%)."),
    ] = None,
    crit_headroom: Annotated[
        int | None,
        typer.Option("--crit-headroom", min=0, metavar="N", help="CRITICAL below N free connections (default 5%)."),
    ] = None,
    pool: Annotated[
        str | None, typer.Option("--pool", metavar="NAME", help="Ask this pool's server (default: the primary).")
    ] = None,
) -> Exit:
    """Sessions on the database: idle in transaction, old transactions, lock waits, connections left.

    DUR is 90, 90s, 5m or 1h. With --token (the admin token) user names and client addresses show.

    \b
    Example:
      fasterdb-admin activity --warn-idle-in-tx 30s --crit-idle-in-tx 2m -o nagios
    """

    def pair(warn: str | None, crit: str | None, name: str, key: str) -> tuple[float, float]:
        """The thresholds given, else the defaults; a default warning never exceeds a given critical."""
        w, c = duration(warn, f"--warn-{name}"), duration(crit, f"--crit-{name}")
        ordered(w, c, f"--warn-{name}", f"--crit-{name}")
        crit_value = DEFAULTS[key][1] if c is None else c
        warn_value = w if w is not None else min(DEFAULTS[key][0], crit_value)
        ordered(warn_value, crit_value, f"--warn-{name}", f"--crit-{name}")
        return warn_value, crit_value

    limits = Limits(
        *pair(warn_idle_in_tx, crit_idle_in_tx, "idle-in-tx", "idle_in_tx"),
        *pair(warn_oldest_xact, crit_oldest_xact, "oldest-xact", "oldest_xact"),
        *pair(warn_lock_wait, crit_lock_wait, "lock-wait", "lock_wait"),
        warn_headroom,
        crit_headroom,
    )
    if warn_headroom is not None and crit_headroom is not None and warn_headroom < crit_headroom:
        raise typer.BadParameter("must not be smaller than --crit-headroom", param_hint="--warn-headroom")
    client = target.client()
    try:
        code, check = fetch(client, limits, pool)
    finally:
        client.close()
    emit(check, target.output, table, nagios_line, as_json)
    return code
