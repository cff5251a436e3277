"""The fleet's connection budget: will pods x pool max (plus everyone else) exhaust max_connections?

Per pod the sidecar holds what it really keeps open on the primary (its monitor connection, its
pool's minimum, the job worker's one), and the application may open its own pools' max — as its
processes report it to the sidecar, or as the caller says. The fleet is the pods at the
autoscaler's maximum plus the rolling update's surge. Everything else connected now (client
backends not opened by a fasterdb sidecar, nor by the application) is counted as it is.
(Maintenance — transfers, jobs — borrows up to the sidecar's pool max for a while on top; it is
shown, not counted: it runs on one pod at a time, not on the fleet.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fasterdb.contract import BUDGET_WARNING_RATIO, BudgetStatus, budget_status

from .activity import usable
from .sql import Activity

SIDECAR_APPLICATION = "fasterdb-sidecar/"  # application_name prefix of every sidecar connection
MONITOR_CONNECTIONS = 1  # the sidecar's dedicated health/catalog connection to the primary
TARGET_RATIO = BUDGET_WARNING_RATIO  # what recommended_pool_max aims for

# Rules of thumb for a pool's max per pod, by workload (shown with every budget).
GUIDANCE: list[tuple[str, str, str]] = [  # (workload, pool max, why)
    (
        "short OLTP transactions (milliseconds)",
        "2-4 x the database's CPU cores, divided by the pods; often 5-10",
        "more connections than cores only queue inside PostgreSQL; a small pool queues in the app instead",
    ),
    (
        "mixed: OLTP plus occasional reports",
        "10-20, with statement_timeout",
        "slow statements hold connections; give reports their own small pool or role",
    ),
    (
        "long batch jobs",
        "2-5, in a separate deployment",
        "a batch that takes the whole pool starves the requests behind it",
    ),
    (
        "many pods, little traffic each",
        "min 0-1, max 2-5; or PgBouncer in transaction mode",
        "idle connections still take a backend (memory, a max_connections slot) each",
    ),
]


@dataclass(frozen=True)
class Fleet:
    """What the caller says about the fleet."""

    pods: int
    surge: int = 0
    app_pool_max: int = 0  # the application's pools' max on the primary, per pod
    app_names: tuple[str, ...] = ()  # application_name prefixes of the application's own connections


@dataclass(frozen=True)
class Budget:
    """The primary's connections against what the fleet may open."""

    fleet: Fleet
    sidecar: int  # connections one sidecar keeps on the primary
    pool_max: int  # what its maintenance may borrow on top (not counted: one pod at a time)
    per_pod: int  # connections one pod may open to the primary
    connections: int  # (pods + surge) x per_pod
    others: int  # client backends now open that are not the fleet's
    required: int
    usable: int
    ratio: float  # required / usable (inf when nothing is usable)
    status: BudgetStatus
    recommended_pool_max: int  # the largest pool max that keeps required at or below 80 % of usable


def sidecar_footprint(pool_min: int, jobs_enabled: bool) -> int:
    """Connections one sidecar keeps on the primary: the monitor, the pool's minimum (at least the
    job worker's one connection, which it polls with every few seconds)."""
    return MONITOR_CONNECTIONS + max(pool_min, 1 if jobs_enabled else 0)


def budget(activity: Activity, fleet: Fleet, sidecar: int, pool_max: int) -> Budget:
    """The budget of the primary's connections for ``fleet``, each pod's sidecar keeping ``sidecar``."""

    def theirs(application: str) -> bool:
        return application.startswith((SIDECAR_APPLICATION, *(f"{name}@" for name in fleet.app_names)))

    others = sum(g.connections for g in activity.groups if not theirs(g.application))
    pods = fleet.pods + fleet.surge
    per_pod = sidecar + fleet.app_pool_max
    fleet_connections = pods * per_pod
    required = fleet_connections + others
    room = usable(activity)
    ratio = required / room if room > 0 else math.inf
    # The pool being sized is the application's: what fits beside the sidecars and everyone else.
    fits = math.floor((TARGET_RATIO * room - others) / pods) - sidecar if pods else 0
    return Budget(
        fleet=fleet,
        sidecar=sidecar,
        pool_max=pool_max,
        per_pod=per_pod,
        connections=fleet_connections,
        others=others,
        required=required,
        usable=room,
        ratio=ratio,
        status=budget_status(ratio),
        recommended_pool_max=max(0, fits),
    )
