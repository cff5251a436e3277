"""``fasterdb-admin db migrate``: create or upgrade the sidecar's own schema."""

from __future__ import annotations

import typer

from ..exitcodes import Exit
from ..options import Target, sidecar_options
from ..output import emit
from .admin import require_ok

app = typer.Typer(help="The sidecar's own schema.", no_args_is_help=True)


@app.command("migrate")
@sidecar_options(token=True, timeout=60.0)
def migrate(target: Target) -> Exit:
    """Create or upgrade the sidecar's own schema (idempotent): the tables of the ledger and of jobs.

    \b
    Example:
      fasterdb-admin db migrate --url http://127.0.0.1:8080 --token "$FASTERDB_ADMIN_TOKEN"
    """
    client = target.client()
    try:
        body = require_ok(client.request("POST", "/admin/migrate", admin=True), "migrate")
    finally:
        client.close()
    emit(
        body,
        target.output,
        lambda b: f"schema {b['schema']} at version {b['version']}; applied: {b['applied'] or 'none'}",
    )
    return Exit.OK
