"""The fasterdb_pg_* metrics: the primary's own view (sessions, slots, wraparound), from the catalog cache.

/metrics first refreshes the cache (at most one catalog round per FASTERDB_CATALOG_CACHE_TTL however
often it is scraped); this collector then reads memory only. A view whose last fetch failed is not
exported with old figures: only ``fasterdb_pg_view_up`` says 0 for it.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..catalog.activity import ActivitySummary, summarize
from ..catalog.sql import Slot
from ..catalog.views import Catalog
from ..catalog.wraparound import wraparound_ratio
from .exposition import Collector, GaugeMetricFamily, Metric

VIEWS = ("activity", "slots", "wraparound")


class CatalogCollector(Collector):
    """Builds the fasterdb_pg_* families from the primary's cached catalog views."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families (called by the registry on each scrape)."""
        pool = self.catalog.databases.primary.name
        up = GaugeMetricFamily(
            "fasterdb_pg_view_up", "1 when the primary answered the view's last catalog query", labels=["view"]
        )
        for view in VIEWS:
            up.add_metric([view], 1.0 if self.catalog.answered(view, pool) else 0.0)
        yield up
        activity = self.catalog.cached_activity(pool)
        if activity is not None and self.catalog.answered("activity", pool):
            yield from self._activity(summarize(activity.value))
        slots = self.catalog.cached_slots(pool)
        if slots is not None and self.catalog.answered("slots", pool):
            yield from self._slots(slots.value)
        wrap = self.catalog.cached_wraparound(pool)
        if wrap is not None and self.catalog.answered("wraparound", pool):
            ages = wrap.value
            xid = GaugeMetricFamily(
                "fasterdb_pg_xid_wraparound_ratio",
                "age(datfrozenxid) / 2^31: at 1 the server stops assigning transaction IDs",
                labels=["database"],
            )
            mxid = GaugeMetricFamily(
                "fasterdb_pg_mxid_wraparound_ratio", "mxid_age(datminmxid) / 2^31", labels=["database"]
            )
            for d in ages.databases:
                xid.add_metric([d.name], wraparound_ratio(d.xid_age))
                mxid.add_metric([d.name], wraparound_ratio(d.mxid_age))
            yield xid
            yield mxid
            yield GaugeMetricFamily(
                "fasterdb_pg_autovacuum_freeze_max_age",
                "autovacuum_freeze_max_age: autovacuum forces freezing at this age",
                value=ages.freeze_max_age,
            )

    @staticmethod
    def _activity(summary: ActivitySummary) -> Iterator[Metric]:
        connections = GaugeMetricFamily("fasterdb_pg_connections", "Client backends by state", labels=["state"])
        for state, count in summary.by_state.items():
            connections.add_metric([state], count)
        yield connections
        yield GaugeMetricFamily(
            "fasterdb_pg_connections_headroom",
            "Connections ordinary roles may still open (max_connections - reserved - in use)",
            value=summary.headroom,
        )
        yield GaugeMetricFamily(
            "fasterdb_pg_connections_usable", "max_connections minus the reserved connections", value=summary.usable
        )
        yield GaugeMetricFamily(
            "fasterdb_pg_oldest_xact_seconds",
            "Age of the oldest open transaction (0: none)",
            value=(summary.oldest_xact.xact_seconds if summary.oldest_xact else None) or 0.0,
        )
        yield GaugeMetricFamily(
            "fasterdb_pg_idle_in_transaction_max_seconds",
            "How long the longest idle-in-transaction session has been idle (0: none)",
            value=(idle.state_seconds if (idle := summary.oldest_idle_in_transaction) else None) or 0.0,
        )
        yield GaugeMetricFamily(
            "fasterdb_pg_lock_waiters", "Sessions waiting for a lock", value=len(summary.lock_waiters)
        )
        yield GaugeMetricFamily(
            "fasterdb_pg_lock_wait_max_seconds",
            "The longest current lock wait (0: none)",
            value=summary.longest_lock_wait_seconds or 0.0,
        )

    @staticmethod
    def _slots(slots: list[Slot]) -> Iterator[Metric]:
        retained = GaugeMetricFamily(
            "fasterdb_pg_slot_retained_bytes", "WAL the slot keeps (current LSN - restart_lsn)", labels=["slot"]
        )
        active = GaugeMetricFamily("fasterdb_pg_slot_active", "1 when a consumer is connected", labels=["slot"])
        safe = GaugeMetricFamily(
            "fasterdb_pg_slot_safe_wal_size_bytes",
            "WAL that can still be written before the slot is lost (max_slot_wal_keep_size)",
            labels=["slot"],
        )
        for slot in slots:
            if slot.retained_bytes is not None:
                retained.add_metric([slot.name], slot.retained_bytes)
            active.add_metric([slot.name], 1.0 if slot.active else 0.0)
            if slot.safe_wal_size is not None:
                safe.add_metric([slot.name], slot.safe_wal_size)
        yield retained
        yield active
        yield safe
