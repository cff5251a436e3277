"""The application's routing figures, from the kit's reports: where its reads went and why.

The kit counts since its process started (``fasterdb.routing``, ``fasterdb.database``); these are
exported as counters labelled with the application and the process, so ``rate()`` works across a
process restart and a report that expires takes its series with it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric

from fasterdb.contract import AppReport

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


def app_routing(reports: list[AppReport]) -> Iterator[Metric]:
    """The routing families from the current reports (no series without a report)."""
    for prefix, name, label, help_ in FAMILIES:
        family = CounterMetricFamily(name, help_, labels=["app", "process", *([label] if label else [])])
        for report in reports:
            for key, count in sorted(report.counters.items()):
                if label and key.startswith(prefix):
                    family.add_metric([report.app, report.instance, key[len(prefix) :]], float(count))
                elif not label and key == prefix:
                    family.add_metric([report.app, report.instance], float(count))
        yield family
