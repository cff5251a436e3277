"""Router: /admin/migrate — create or upgrade the sidecar's schema (bearer token required)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from FasterAPI import Response

from fasterdb.contract import MigrateBody

from ..db.migrations import Migration
from ..http.api import Api, Call, Operation, Reply, json_reply

MIGRATE = Operation(
    "POST",
    "/admin/migrate",
    "admin_migrate",
    "Create or upgrade the sidecar's schema (idempotent; safe from several sidecars at once)",
    "admin",
    (
        Reply(200, "the schema's version and the migrations this call applied", MigrateBody),
        Reply(503, "the primary is unavailable"),
    ),
    admin=True,
)


def register(api: Api, migrate: Callable[[], Awaitable[Migration]]) -> None:
    """POST /admin/migrate."""

    @api.route(MIGRATE)
    async def migrate_schema(call: Call) -> Response:
        """Apply pending migrations."""
        done = await migrate()
        return json_reply(MigrateBody(done.schema, done.version, done.applied))
