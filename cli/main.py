"""``fasterdb-admin``: assembles the commands of ``cli/commands/``; maps every outcome to an exit code."""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from . import __version__
from .client import CliError
from .commands import accounts, activity, budget, db, health, jobs, pools, replicas, slots, wraparound
from .commands.inject import inject, uninject
from .commands.transfer import transfer
from .exitcodes import Exit
from .nagios import status_line
from .options import AdminCommand, CheckCommand, OfflineCommand
from .output import closed_pipe, diagnose, same_terminal

# Every check: its command, its function, its Nagios service name (also for its UNKNOWN line on any
# failure) and its one-line summary in the command list.
CHECKS = (
    ("health", health.health, health.SERVICE, "Is the database usable? (readiness, Nagios)"),
    ("check-replicas", replicas.check_replicas, replicas.SERVICE, "Replica lag in bytes and seconds, with thresholds"),
    ("pool-stats", pools.pool_stats, pools.SERVICE, "The sidecar's pools: in use, waiting, waits (--watch)"),
    ("activity", activity.activity, activity.SERVICE, "Sessions: idle in transaction, old transactions, locks"),
    ("slots", slots.slots, slots.SERVICE, "Replication slots and the WAL they retain"),
    ("wraparound", wraparound.wraparound, wraparound.SERVICE, "Transaction-ID age of every database"),
    ("budget", budget.budget, budget.SERVICE, "Will the fleet's pools exhaust max_connections?"),
)
NAGIOS_SERVICES = {name: service for name, _, service, _ in CHECKS}


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
            _fail(argv, exc.message, exc.code, exc.details)
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

    def invoke(self, ctx: Any) -> Any:
        """Run the command; a reader of stdout that went away (``| head -1``) ends it quietly with 0.

        Here, inside click's own handler, which would exit 1 for it.
        """
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            closed_pipe()


def _fail(argv: list[str], message: str, code: Exit, details: list[str] | None = None) -> NoReturn:
    service = _nagios_service(argv)
    if service is not None:
        try:
            sys.stdout.write(status_line(service, code, message) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            closed_pipe(code)  # the run failed all the same
        if same_terminal():  # a person would read the line twice
            sys.exit(code)
    diagnose(message, details or ())
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


# Short help for the command list: one line each, never cut off. The command class adds the shared
# options (cli/options.py) to every command.
for _name, _function, _, _summary in CHECKS:
    app.command(_name, cls=CheckCommand, short_help=_summary)(_function)
app.command("transfer", cls=AdminCommand, short_help="Move money between two accounts, exactly once")(transfer)
app.add_typer(jobs.app, name="jobs")
app.add_typer(db.app, name="db")
app.add_typer(accounts.app, name="accounts")
app.command("inject", cls=OfflineCommand, short_help="Add the sidecar to Kubernetes workloads (YAML in, YAML out)")(
    inject
)
app.command("uninject", cls=OfflineCommand, short_help="Remove what inject added (YAML in, YAML out)")(uninject)


def main() -> None:
    """Entry point of ``fasterdb-admin``."""
    app()
