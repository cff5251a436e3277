"""Who is connected and what waits on what: a summary of one server's pg_stat_activity rows.

The rows never carry query text. The connection that asked is counted (it uses a slot) but never
named as the oldest transaction. Which identities a caller may see is decided at the edge.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from .sql import Activity, Backend

IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
UNKNOWN_STATE = "unknown"  # pg_stat_activity hides other roles' state without pg_read_all_stats


@dataclass(frozen=True)
class Blocking:
    """A session others wait for (``backend`` None: it ended between the two reads of one statement)."""

    pid: int
    waiters: int
    backend: Backend | None


@dataclass(frozen=True)
class ActivitySummary:
    """One server's sessions, folded into what operators act on."""

    activity: Activity
    usable: int  # max_connections minus both reserves: what ordinary roles may use
    headroom: int  # connections ordinary roles may still open
    by_state: dict[str, int]
    by_application: list[tuple[str, dict[str, int]]]  # most connections first
    oldest_xact: Backend | None
    oldest_idle_in_transaction: Backend | None
    lock_waiters: list[Backend]  # longest wait first
    blockers: list[Blocking]  # most waiters first
    longest_lock_wait_seconds: float | None

    @property
    def connections(self) -> int:
        """Client backends now."""
        return sum(g.connections for g in self.activity.groups)


def usable(activity: Activity) -> int:
    """Connections ordinary roles may use: max_connections minus both reserves."""
    return activity.max_connections - activity.superuser_reserved - activity.reserved


def summarize(activity: Activity) -> ActivitySummary:
    """The summary of one server's sessions."""
    backends = activity.backends
    others = [b for b in backends if b.pid != activity.me]
    by_state: Counter[str] = Counter()
    apps: dict[str, Counter[str]] = defaultdict(Counter)
    for g in activity.groups:
        by_state[g.state or UNKNOWN_STATE] += g.connections
        apps[g.application][g.state or UNKNOWN_STATE] += g.connections
    by_application = sorted(
        ((name, dict(states)) for name, states in apps.items()), key=lambda a: (-sum(a[1].values()), a[0])
    )
    in_xact = [b for b in others if b.xact_seconds is not None]
    idle_in_xact = [b for b in others if b.state in IDLE_IN_TRANSACTION and b.state_seconds is not None]
    waiting = sorted((b for b in others if b.waiting), key=lambda b: -(b.lock_wait_seconds or 0.0))
    by_pid = {b.pid: b for b in backends}
    blocking: Counter[int] = Counter(pid for b in waiting for pid in set(b.blocked_by or []))
    waits = [b.lock_wait_seconds for b in waiting if b.lock_wait_seconds is not None]
    room = usable(activity)
    return ActivitySummary(
        activity=activity,
        usable=room,
        headroom=room - sum(by_state.values()),
        by_state=dict(sorted(by_state.items())),
        by_application=by_application,
        oldest_xact=max(in_xact, key=lambda b: b.xact_seconds or 0.0, default=None),
        oldest_idle_in_transaction=max(idle_in_xact, key=lambda b: b.state_seconds or 0.0, default=None),
        lock_waiters=waiting,
        blockers=[Blocking(pid, count, by_pid.get(pid)) for pid, count in blocking.most_common()],
        longest_lock_wait_seconds=max(waits) if waits else None,
    )
