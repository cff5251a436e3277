"""``fasterdb-admin``: assembles the commands of ``cli/commands/``; maps every outcome to an exit code."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from cli.client import CliError
from cli.commands import accounts, db, jobs
from cli.commands.health import health
from cli.commands.pools import pool_stats
from cli.commands.replicas import check_replicas
from cli.commands.transfer import transfer
from cli.exitcodes import Exit
from cli.output import diagnose


class AdminGroup(TyperGroup):
    """Maps click's outcomes onto our exit codes: a usage error is UNKNOWN (3), never 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; translate every outcome into one stderr line and an exit code."""
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except CliError as exc:
            diagnose(exc.message)
            sys.exit(exc.code)
        except typer.Abort:
            diagnose("aborted")
            sys.exit(Exit.UNKNOWN)
        except Exception as exc:
            if not _is_click_exception(exc):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.stderr.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
                sys.exit(Exit.UNKNOWN)
            # Bad option, missing argument, invalid value: a usage error is UNKNOWN, never 2.
            diagnose(f"usage error: {exc.format_message()}" + _hint(exc))  # type: ignore[attr-defined]
            sys.exit(Exit.UNKNOWN)
        sys.exit(rv if isinstance(rv, int) else Exit.OK)


def _is_click_exception(exc: Exception) -> bool:
    # Typer vendors click in recent releases (typer._click); match on the class, not the module.
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _hint(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


app = typer.Typer(
    cls=AdminGroup,
    name="fasterdb-admin",
    help="Admin CLI of the fasterdb sidecar. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Admin CLI of the fasterdb sidecar."""


app.command("health")(health)
app.command("check-replicas")(check_replicas)
app.command("pool-stats")(pool_stats)
app.command("transfer")(transfer)
app.add_typer(jobs.app, name="jobs")
app.add_typer(db.app, name="db")
app.add_typer(accounts.app, name="accounts")


def main() -> None:
    """Entry point of ``fasterdb-admin``."""
    app()
