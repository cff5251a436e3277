"""The database view's folding, without a database: the activity summary, wraparound, the budget."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from fasterdb.contract import budget_status
from fasterdb_sidecar.catalog.activity import UNKNOWN_STATE, summarize
from fasterdb_sidecar.catalog.budget import Fleet, budget, sidecar_footprint
from fasterdb_sidecar.catalog.sql import Activity, Backend, Database, Group, Wraparound
from fasterdb_sidecar.catalog.wraparound import worst_ratios, wraparound_ratio


def backend(pid: int, state: str | None = "idle", app: str = "app", **kw: object) -> Backend:
    fields: dict[str, object] = {
        "user": "u",
        "client_addr": None,
        "xact_seconds": None,
        "state_seconds": None,
        "waiting": False,
        "blocked_by": None,
        "lock_wait_seconds": None,
    }
    fields.update(kw)
    return Backend(pid, state, app, **fields)  # type: ignore[arg-type]


def activity(*backends: Backend, me: int = 1, max_connections: int = 100) -> Activity:
    """What the activity statement returns for these backends: all counted, all named."""
    counted = Counter((b.application, b.state) for b in backends)
    groups = [Group(app, state, n) for (app, state), n in counted.items()]
    return Activity(max_connections, 3, 2, me, groups, list(backends))


def test_summary_counts_states_and_names_the_oldest_without_the_asker() -> None:
    summary = summarize(
        activity(
            backend(1, "active", "fasterdb-sidecar/primary/monitor", xact_seconds=999.0),  # the asker
            backend(2, "idle in transaction", "billing", xact_seconds=30.0, state_seconds=25.0),
            backend(3, "active", "billing", xact_seconds=5.0),
            backend(4, None, "other"),
        )
    )
    assert summary.usable == 95 and summary.connections == 4 and summary.headroom == 91
    assert summary.by_state == {"active": 2, "idle in transaction": 1, UNKNOWN_STATE: 1}
    assert summary.by_application[0] == ("billing", {"idle in transaction": 1, "active": 1})
    assert summary.oldest_xact is not None and summary.oldest_xact.pid == 2
    assert summary.oldest_idle_in_transaction is not None and summary.oldest_idle_in_transaction.pid == 2


def test_lock_waits_name_their_blockers_most_waiters_first() -> None:
    summary = summarize(
        activity(
            backend(10, "idle in transaction", xact_seconds=60.0),
            backend(11, "active", waiting=True, blocked_by=[10], lock_wait_seconds=3.0),
            backend(12, "active", waiting=True, blocked_by=[10, 99], lock_wait_seconds=9.0),
        )
    )
    assert [b.pid for b in summary.lock_waiters] == [12, 11]  # longest wait first
    assert [(b.pid, b.waiters) for b in summary.blockers] == [(10, 2), (99, 1)]
    assert summary.blockers[1].backend is None  # 99 ended (or is no client backend)
    assert summary.longest_lock_wait_seconds == 9.0


def test_wraparound_ratios() -> None:
    view = Wraparound(200_000_000, 400_000_000, [Database("a", 2**30, 10, True), Database("b", 10, 2**29, True)])
    assert wraparound_ratio(2**31) == 1.0
    assert worst_ratios(view) == (0.5, 0.25)
    assert worst_ratios(Wraparound(1, 1, [])) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("ratio", "status"), [(0.5, "ok"), (0.8, "ok"), (0.81, "warning"), (1.0, "warning"), (1.01, "critical")]
)
def test_budget_verdict_thresholds(ratio: float, status: str) -> None:
    assert budget_status(ratio) == status


def test_budget_counts_the_fleet_and_everyone_else() -> None:
    view = activity(
        backend(1, app="fasterdb-sidecar/primary"),
        backend(2, app="orders@orders-7f9c/primary"),
        backend(3, app="psql"),
        backend(4, app="ordersreport"),  # another application whose name starts alike: not ours
        max_connections=105,  # usable 100
    )
    sidecar = sidecar_footprint(pool_min=0, jobs_enabled=True)
    assert sidecar == 2  # the monitor connection and the job worker's one
    b = budget(view, Fleet(pods=4, surge=1, app_pool_max=14, app_names=("orders",)), sidecar, pool_max=10)
    assert b.per_pod == 2 + 14 and b.connections == 5 * 16 and b.others == 2
    assert b.required == 82 and b.usable == 100 and b.status == "warning"
    # The application's pools are what is sized: 80 % of 100, minus the others, over 5 pods, minus 2.
    assert b.recommended_pool_max == math.floor((80 - 2) / 5) - 2
    assert sidecar_footprint(pool_min=3, jobs_enabled=False) == 4


def test_a_server_without_usable_connections_is_critical() -> None:
    b = budget(activity(max_connections=5), Fleet(pods=1), 1, pool_max=1)
    assert b.usable == 0 and math.isinf(b.ratio) and b.status == "critical"
