"""``fasterdb-admin``: assembles the commands of ``cli/commands/``; maps every outcome to an exit code."""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from . import __version__
from .client import CliError
from .commands import accounts, db, jobs
from .commands import health as health_cmd
from .commands import replicas as replicas_cmd
from .commands.activity import activity
from .commands.budget import budget
from .commands.health import health
from .commands.inject import inject, uninject
from .commands.pools import pool_stats
from .commands.replicas import check_replicas
from .commands.slots import slots
from .commands.transfer import transfer
from .commands.wraparound import wraparound
from .exitcodes import Exit
from .nagios import status_line
from .output import diagnose

# The service name of each command's Nagios line (also for its UNKNOWN line on any failure).
NAGIOS_SERVICES = {
    "health": health_cmd.SERVICE,
    "check-replicas": replicas_cmd.SERVICE,
    "activity": "ACTIVITY",
    "slots": "SLOTS",
    "wraparound": "WRAPAROUND",
    "budget": "BUDGET",
}


class AdminGroup(TyperGroup):
    """The top-level guard: every outcome is an exit code and one line, never a traceback.

    A usage error is UNKNOWN (3), never 2. With ``-o nagios`` every failure also prints the one
    Nagios status line on stdout (a plugin must always print one).
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; translate every outcome into one stderr line and an exit code."""
        argv = list(kwargs.get("args") or (args[0] if args else None) or sys.argv[1:])
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except CliError as exc:
            _fail(argv, exc.message, exc.code)
        except typer.Abort:
            _fail(argv, "aborted", Exit.UNKNOWN)
        except Exception as exc:
            if not _is_click_exception(exc):
                # A bug of ours: still one line and UNKNOWN, with what to report.
                _fail(argv, f"internal error ({type(exc).__name__}: {exc}); please report it", Exit.UNKNOWN)
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.stderr.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
                sys.exit(Exit.UNKNOWN)
            # Bad option, missing argument, invalid value: a usage error is UNKNOWN, never 2.
            _fail(argv, f"usage error: {exc.format_message()}" + _hint(exc), Exit.UNKNOWN)  # type: ignore[attr-defined]
        sys.exit(rv if isinstance(rv, int) else Exit.OK)


def _fail(argv: list[str], message: str, code: Exit) -> NoReturn:
    service = _nagios_service(argv)
    if service is not None:
        sys.stdout.write(status_line(service, code, message) + "\n")
        sys.stdout.flush()
    diagnose(message)
    sys.exit(code)


def _nagios_service(argv: list[str]) -> str | None:
    """The Nagios service name when the command line asks for ``-o nagios``, else None."""
    wants = any(
        arg in ("-onagios", "--output=nagios") or (arg in ("-o", "--output") and nxt == "nagios")
        for arg, nxt in zip(argv, [*argv[1:], ""], strict=True)
    )
    if not wants:
        return None
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    return NAGIOS_SERVICES.get(command, "FASTERDB")


def _is_click_exception(exc: Exception) -> bool:
    # Typer vendors click in recent releases (typer._click); match on the class, not the module.
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _hint(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


app = typer.Typer(
    cls=AdminGroup,
    name="fasterdb-admin",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 110},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"fasterdb-admin {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Admin CLI of the fasterdb sidecar. Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    \b
    Start here:
      fasterdb-admin health                 is the database usable?
      fasterdb-admin check-replicas         how far behind is each replica?
      fasterdb-admin activity               what is the server doing (idle in transaction, locks)?
      fasterdb-admin budget --pods 12       will the fleet exhaust max_connections?
    """


# Short help for the command list: one line each, never cut off.
app.command("health", short_help="Is the database usable? (readiness, Nagios)")(health)
app.command("check-replicas", short_help="Replica lag in bytes and seconds, with thresholds")(check_replicas)
app.command("pool-stats", short_help="The sidecar's pools: in use, waiting, waits (--watch)")(pool_stats)
app.command("activity", short_help="Sessions: idle in transaction, old transactions, locks, headroom")(activity)
app.command("slots", short_help="Replication slots and the WAL they retain")(slots)
app.command("wraparound", short_help="Transaction-ID age of every database")(wraparound)
app.command("budget", short_help="Will the fleet's pools exhaust max_connections?")(budget)
app.command("transfer", short_help="Move money between two accounts, exactly once")(transfer)
app.add_typer(jobs.app, name="jobs")
app.add_typer(db.app, name="db")
app.add_typer(accounts.app, name="accounts")
app.command("inject", short_help="Add the sidecar to Kubernetes workloads (YAML in, YAML out)")(inject)
app.command("uninject", short_help="Remove what inject added (YAML in, YAML out)")(uninject)


def main() -> None:
    """Entry point of ``fasterdb-admin``."""
    app()
