"""Who is connected and what waits on what: the activity view built from pg_stat_activity rows.

The rows never carry query text. User names and client addresses are included only when the
request presented the admin token (``identities``). The connection that asked is counted (it uses
a slot) but never named as the oldest transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from fasterdb.contract import ActivityBody, ApplicationConnections, Blocker, LockWaiter, Session

from ..health.sql import iso
from .sql import Activity, Backend

IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
UNKNOWN_STATE = "unknown"  # pg_stat_activity hides other roles' state without pg_read_all_stats


def usable(activity: Activity) -> int:
    """Connections ordinary roles may use: max_connections minus both reserves."""
    return activity.max_connections - activity.superuser_reserved - activity.reserved


def _who(backend: Backend, identities: bool) -> dict[str, Any]:
    return {"user": backend.user or "", "client_addr": backend.client_addr} if identities else {}


def summarize(activity: Activity, pool: str, at: float, identities: bool) -> ActivityBody:
    """The /db/activity body of one server's sessions."""
    backends = activity.backends
    others = [b for b in backends if b.pid != activity.me]
    by_state = Counter(b.state or UNKNOWN_STATE for b in backends)
    apps: dict[str, Counter[str]] = defaultdict(Counter)
    for b in backends:
        apps[b.application][b.state or UNKNOWN_STATE] += 1
    by_application = sorted(
        (ApplicationConnections(name, sum(states.values()), dict(states)) for name, states in apps.items()),
        key=lambda a: (-a.connections, a.application),
    )

    in_xact = [b for b in others if b.xact_seconds is not None]
    oldest = max(in_xact, key=lambda b: b.xact_seconds or 0.0, default=None)
    idle_in_xact = [b for b in others if b.state in IDLE_IN_TRANSACTION and b.state_seconds is not None]
    oldest_idle = max(idle_in_xact, key=lambda b: b.state_seconds or 0.0, default=None)

    waiting = [b for b in others if b.waiting]
    by_pid = {b.pid: b for b in backends}
    blocking: Counter[int] = Counter(pid for b in waiting for pid in set(b.blocked_by or []))
    waiters = [
        LockWaiter(b.pid, b.application, b.lock_wait_seconds, sorted(set(b.blocked_by or [])), **_who(b, identities))
        for b in sorted(waiting, key=lambda b: -(b.lock_wait_seconds or 0.0))
    ]
    blockers = []
    for pid, count in blocking.most_common():
        blocker = by_pid.get(pid)
        if blocker is None:  # ended between the two reads of one statement, or not a client backend
            blockers.append(Blocker(pid, "", None, None, count))
        else:
            who = _who(blocker, identities)
            blockers.append(Blocker(pid, blocker.application, blocker.state, blocker.xact_seconds, count, **who))
    waits = [b.lock_wait_seconds for b in waiting if b.lock_wait_seconds is not None]

    total = usable(activity)
    return ActivityBody(
        pool=pool,
        collected_at=iso(at),
        max_connections=activity.max_connections,
        superuser_reserved_connections=activity.superuser_reserved,
        reserved_connections=activity.reserved,
        usable=total,
        connections=len(backends),
        headroom=total - len(backends),
        by_state=dict(sorted(by_state.items())),
        by_application=by_application,
        oldest_xact_seconds=oldest.xact_seconds if oldest else None,
        oldest_xact=_session(oldest, oldest.xact_seconds, identities) if oldest else None,
        idle_in_transaction_max_seconds=oldest_idle.state_seconds if oldest_idle else None,
        oldest_idle_in_transaction=(
            _session(oldest_idle, oldest_idle.state_seconds, identities) if oldest_idle else None
        ),
        lock_waiters=waiters,
        blockers=blockers,
        longest_lock_wait_seconds=max(waits) if waits else None,
        identities=identities,
        unknown_states=by_state.get(UNKNOWN_STATE, 0),
    )


def _session(backend: Backend, seconds: float | None, identities: bool) -> Session:
    return Session(
        backend.pid, backend.application, backend.state, max(0.0, seconds or 0.0), **_who(backend, identities)
    )
