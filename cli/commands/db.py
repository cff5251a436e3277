"""``fasterdb-admin db migrate``: create or upgrade the sidecar's own schema."""

from __future__ import annotations

import typer

from ..exitcodes import Exit
from ..options import AdminCommand, target
from ..output import emit

app = typer.Typer(help="The sidecar's own schema.", no_args_is_help=True)


# Migrating may wait for other sidecars' migrations (an advisory lock): a longer default --timeout.
@app.command("migrate", cls=AdminCommand, context_settings={"default_map": {"timeout": 60.0}})
def migrate(ctx: typer.Context) -> Exit:
    """Create or upgrade the sidecar's own schema (idempotent): the tables of the ledger and of jobs.

    \b
    Example:
      fasterdb-admin db migrate --url http://127.0.0.1:8080 --token "$FASTERDB_ADMIN_TOKEN"
    """
    chosen = target(ctx)
    with chosen.client() as client:
        body = client.request("POST", "/admin/migrate", auth="required").expect("migrate")
    emit(
        body,
        chosen.output,
        lambda b: f"schema {b['schema']} at version {b['version']}; applied: {b['applied'] or 'none'}",
    )
    return Exit.OK
