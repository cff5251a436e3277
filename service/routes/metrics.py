"""Router: /metrics — Prometheus text format, or OpenMetrics when the scraper asks for it."""

from __future__ import annotations

from FasterAPI import Response

from ..catalog.views import Catalog
from ..http.api import Api, Call, Operation, Reply, Sized
from ..metrics.catalog import CatalogCollector
from ..metrics.collector import SidecarCollector
from ..metrics.exposition import Collector, negotiate

METRICS = Operation(
    "GET",
    "/metrics",
    "metrics",
    "Prometheus metrics (OpenMetrics with Accept: application/openmetrics-text)",
    "metrics",
    (
        Reply(
            200,
            "the Prometheus text exposition format (text/plain; version=0.0.4), or OpenMetrics "
            "(application/openmetrics-text; version=1.0.0) when the Accept header prefers it",
            None,
            media_type="text/plain",
            schema={"type": "string"},
        ),
    ),
)


def register(api: Api, collector: SidecarCollector, catalog: Catalog) -> None:
    """The /metrics endpoint over the sidecar's collectors (no global state)."""
    collectors: tuple[Collector, ...] = (collector, CatalogCollector(catalog))

    @api.route(METRICS)
    async def metrics(call: Call) -> Response:
        """Every metric, built from memory after one catalog round per TTL (the fasterdb_pg_* views)."""
        await catalog.refresh()
        encoder, content_type = negotiate(call.request.headers.get("accept", ""))
        # The content type is set verbatim: the framework would append a second charset to it
        # (Prometheus 3 rejects a scrape whose Content-Type carries two).
        return Sized(encoder(collectors), headers={"content-type": content_type, "cache-control": "no-store"})
