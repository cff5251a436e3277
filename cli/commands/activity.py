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

from ..check import Verdict, run_check
from ..client import SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata
from ..options import target
from ..output import human_time, make_table, styled
from ..thresholds import duration, human_seconds, in_force, ordered

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
class ActivityCheck(Verdict):
    """The sidecar's answer, the ranges in force and the verdicts."""

    body: ActivityBody
    ranges: dict[str, tuple[Range, Range]]
    verdicts: dict[str, Exit]
    code: Exit

    def table(self) -> Group:
        """Verdicts, connections by state and application, and the sessions that matter."""
        return table(self)

    def document(self) -> Any:
        """The sidecar's body plus the verdicts and the ranges in force."""
        document: dict[str, Any] = msgspec.to_builtins(self.body)
        document["check"] = self.code.name
        document["checks"] = {
            name: {"verdict": self.verdicts[name].name, "warning": warn.text, "critical": crit.text}
            for name, (warn, crit) in self.ranges.items()
        }
        return document

    def summary(self) -> str:
        """One line: connections, then what is wrong or notable."""
        return summary(self)

    def perfdata(self, prefix: str = "") -> list[str]:
        """Connections, headroom, the longest idle-in-transaction, transaction and lock wait."""
        body, r = self.body, self.ranges
        return [
            perfdata(f"{prefix}connections", body.connections, "", None, None, 0, body.usable),
            perfdata(f"{prefix}headroom", body.headroom, "", *r["headroom"], 0, body.usable),
            perfdata(
                f"{prefix}idle_in_transaction_seconds", body.idle_in_transaction_max_seconds or 0, "s", *r["idle_in_tx"]
            ),
            perfdata(f"{prefix}oldest_xact_seconds", body.oldest_xact_seconds or 0, "s", *r["oldest_xact"]),
            perfdata(f"{prefix}lock_waiters", len(body.lock_waiters)),
            perfdata(f"{prefix}lock_wait_seconds", body.longest_lock_wait_seconds or 0, "s", *r["lock_wait"]),
        ]


def _headroom_ranges(body: ActivityBody, limits: Limits) -> tuple[Range, Range]:
    defaults = (math.ceil(body.usable * HEADROOM_SHARE[0]), math.ceil(body.usable * HEADROOM_SHARE[1]))
    options = ("--warn-headroom", "--crit-headroom")
    warn, crit = in_force(limits.warn_headroom, limits.crit_headroom, defaults, options, below=True)
    # Nagios "N:" alerts below N.
    return Range(f"{warn}:", float(warn), math.inf), Range(f"{crit}:", float(crit), math.inf)


def fetch(client: SidecarClient, limits: Limits, pool: str | None) -> ActivityCheck:
    """Ask /db/activity and judge it."""
    # The token is optional here: with it, the sidecar adds user names and client addresses.
    reply = client.request("GET", "/db/activity", params={"pool": pool}, auth="optional")
    if reply.status != 200:
        raise reply.failure("/db/activity")
    return verdict(reply.decode(ActivityBody), limits)


def verdict(body: ActivityBody, limits: Limits) -> ActivityCheck:
    """Each figure judged by its ranges; the worst is the verdict."""
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
    return ActivityCheck(body, ranges, verdicts, worst(list(verdicts.values())))


def _who(session: Any) -> str:
    if session.application is msgspec.UNSET:  # names only with the admin token
        return f"pid {session.pid}"
    return f"pid {session.pid}, {session.application or 'no application_name'}"


def _name(value: Any) -> str:
    return "-" if value is msgspec.UNSET else str(value)


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


# The duration checks as the table shows them: (label, key, the value in the body).
DURATIONS = (
    ("idle in transaction", "idle_in_tx", "idle_in_transaction_max_seconds"),
    ("oldest transaction", "oldest_xact", "oldest_xact_seconds"),
    ("longest lock wait", "lock_wait", "longest_lock_wait_seconds"),
)


def table(check: ActivityCheck) -> Group:
    """Verdicts, connections by state and application, and the sessions that matter."""
    body = check.body
    rows: list[list[Any]] = [
        [
            "headroom",
            body.headroom,
            *(x.text for x in check.ranges["headroom"]),
            styled(check.verdicts["headroom"].name),
        ]
    ]
    for label, key, field in DURATIONS:
        thresholds = [human_seconds(x.end) for x in check.ranges[key]]
        rows.append([label, human_seconds(getattr(body, field)), *thresholds, styled(check.verdicts[key].name)])
    verdicts = make_table(None, ["check", "value", "warning", "critical", "verdict"], rows)
    apps: Any = (
        make_table(
            None,
            ["application", "connections", "by state"],
            [[a.application or "(none)", a.connections, _states(a.by_state)] for a in body.by_application],
        )
        if body.by_application is not None
        else Text("application names, users and client addresses are shown with the admin token (--token)")
    )
    parts: list[Any] = [
        Text(f"activity on {body.pool}: ") + styled(check.code.name),
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
                    [w.pid, _name(w.application), human_seconds(w.waiting_seconds), ", ".join(map(str, w.blocked_by))]
                    for w in body.lock_waiters
                ],
            )
        )
        parts.append(
            make_table(
                "blockers",
                ["pid", "application", "state", "transaction age", "blocking"],
                [
                    [b.pid, _name(b.application), b.state, human_seconds(b.xact_seconds), b.blocking]
                    for b in body.blockers
                ],
            )
        )
    if body.unknown_states:
        parts.append(Text(f"{body.unknown_states} sessions' state is hidden: grant pg_monitor to the sidecar's role"))
    parts.append(Text(f"collected at {human_time(body.collected_at)}; query text is never shown", style="dim"))
    return Group(*parts)


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{state} {count}" for state, count in states.items())


def activity(
    ctx: typer.Context,
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
        options = (f"--warn-{name}", f"--crit-{name}")
        return in_force(duration(warn, options[0]), duration(crit, options[1]), DEFAULTS[key], options)

    ordered(warn_headroom, crit_headroom, ("--warn-headroom", "--crit-headroom"), below=True)
    limits = Limits(
        *pair(warn_idle_in_tx, crit_idle_in_tx, "idle-in-tx", "idle_in_tx"),
        *pair(warn_oldest_xact, crit_oldest_xact, "oldest-xact", "oldest_xact"),
        *pair(warn_lock_wait, crit_lock_wait, "lock-wait", "lock_wait"),
        warn_headroom,
        crit_headroom,
    )
    return run_check(target(ctx), SERVICE, lambda client: fetch(client, limits, pool))
