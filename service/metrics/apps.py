"""The application's routing figures, from the kit's reports: where its reads went and why.

The kit counts since its process started (``fasterdb.routing``, ``fasterdb.database``); these are
exported as counters labelled with the application and the process, so ``rate()`` works across a
process restart and a report that expires takes its series with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

from fasterdb.contract import AppReport
from fasterdb.routing import Reason

from .exposition import CounterMetricFamily, Metric

# (counter prefix in the kit's report, metric name, label after app and process, help)
FAMILIES = (
    (
        "route:",
        "fasterdb_app_read_routes",
        "reason",
        "Reads by routing decision: replica, lag (spilled onto the primary), down (no replica serves), unknown "
        "(no fresh view from the sidecar), read_after, rejected (past the spill cap), stale, no_replicas",
    ),
    ("reads:", "fasterdb_app_reads", "target", "Reads by the server that answered: primary or a replica's name"),
    (
        "read_after:",
        "fasterdb_app_read_after_waits",
        "outcome",
        "Token-carrying reads that waited for a replica: waited (it caught up) or fallback (the primary answered)",
    ),
    ("write_holds", "fasterdb_app_write_holds", "", "Writes that waited for a writable primary (a switchover)"),
    ("read:replica_error", "fasterdb_app_read_replica_errors", "", "Reads moved to the primary: replica unreachable"),
)
# Spills: reads the primary served because no replica could (the alert's numerator).
SPILL_REASONS = ("lag", "down", "unknown", "rejected")
ROUTE_REASONS = frozenset(get_args(Reason))
READ_AFTER_OUTCOMES = frozenset({"waited", "fallback"})


def _label_values(report: AppReport) -> dict[str, frozenset[str]]:
    """The label values the kit reports, per prefix: anything else in a report is not exported (a
    report's keys must not become unbounded series)."""
    return {
        "route:": ROUTE_REASONS,
        "reads:": frozenset(p.name for p in report.pools),
        "read_after:": READ_AFTER_OUTCOMES,
    }


def app_routing(reports: list[AppReport]) -> Iterator[Metric]:
    """The routing families from the current reports (no series without a report)."""
    known = [_label_values(report) for report in reports]
    for prefix, name, label, help_ in FAMILIES:
        family = CounterMetricFamily(name, help_, labels=["app", "process", *([label] if label else [])])
        for report, values in zip(reports, known, strict=True):
            for key, count in sorted(report.counters.items()):
                if label and key.startswith(prefix) and key[len(prefix) :] in values[prefix]:
                    family.add_metric([report.app, report.instance, key[len(prefix) :]], float(count))
                elif not label and key == prefix:
                    family.add_metric([report.app, report.instance], float(count))
        yield family
