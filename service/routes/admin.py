"""Router: /admin/migrate — create or upgrade the sidecar's schema (bearer token required)."""

from __future__ import annotations

from FasterAPI import FasterRouter, JSONResponse, Request

from service.auth import ADMIN_SECURITY, AdminAuth
from service.errors import error_responses, json_content
from service.http import json_response
from service.ledger import Ledger


def admin_router(auth: AdminAuth, ledger: Ledger) -> FasterRouter:
    """POST /admin/migrate."""
    router = FasterRouter(tags=["admin"])

    @router.post(
        "/admin/migrate",
        summary="Create or upgrade the sidecar's schema (idempotent; safe from several sidecars)",
        openapi_extra={
            "security": ADMIN_SECURITY,
            "responses": {
                "200": {"description": "schema version", "content": json_content({"type": "object"})},
                **error_responses(401, 403, 503),
            },
        },
    )
    async def admin_migrate(request: Request) -> JSONResponse:
        """Apply pending migrations."""
        auth.check(request)
        return json_response(await ledger.migrate())

    return router
