"""Router: /metrics in the Prometheus text format (official prometheus-client)."""

from __future__ import annotations

from FasterAPI import FasterRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from service.collector import SidecarCollector


def metrics_router(collector: SidecarCollector) -> FasterRouter:
    """The /metrics endpoint over a registry of our own (no global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    router = FasterRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        openapi_extra={
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            }
        },
    )
    async def metrics() -> Response:
        """Every metric, built from memory; never queries the database."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
