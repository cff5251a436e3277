"""The one output function for every command: table (rich), json, or nagios; stdout for data.

Also the CLI's one time format (``human_time``) and its one way to say something on stderr
(``diagnose``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fasterdb.sizes import format_size


class Output(StrEnum):
    """The --output choices of commands that are not checks."""

    table = "table"
    json = "json"


class CheckOutput(StrEnum):
    """--output for checks, which can also speak Nagios."""

    table = "table"
    json = "json"
    nagios = "nagios"


# Colours of states and verdicts in tables: what is fine green, what needs a look yellow, the rest red.
_GOOD = {"OK", "ok", "ready", "streaming", "succeeded", "applied", "serving", "yes", "started"}
_WATCH = {"WARNING", "catching_up", "throttled", "queued", "running", "replay_paused", "draining"}


def state_style(state: str) -> str:
    """The rich style for a state or a Nagios verdict."""
    if state in _GOOD:
        return "green"
    if state in _WATCH:
        return "yellow"
    return "bold red"


def styled(state: str) -> Text:
    """A state or a verdict in its colour."""
    return Text(state, style=state_style(state))


def make_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A rich table with the given header and rows (None renders as '-')."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None else v if isinstance(v, Text) else str(v) for v in row))
    return table


class StdoutConsole(Console):
    """rich's Console on stdout, but a reader that went away ends the CLI with 0, not rich's 1."""

    def on_broken_pipe(self) -> None:
        """The reader of stdout went away (``| head -3``)."""
        self.quiet = True
        closed_pipe()


def console() -> Console:
    """A console on stdout; not a terminal (a pipe, a file, a test): tables are not squeezed into 80 columns."""
    return StdoutConsole(soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def closed_pipe(code: int = 0) -> NoReturn:
    """The reader of stdout went away (``| head -1``): not an error; end quietly with ``code`` (0).

    What is still buffered for stdout would fail again at exit: stdout goes to /dev/null first.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(code)


def write(text: str) -> None:
    """Text on stdout, flushed at once (a reader at the other end of a pipe sees it now)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def emit(
    data: Any,
    output: str,
    table: Callable[[Any], Any] | None = None,
    nagios: Callable[[Any], str] | None = None,
    as_json: Callable[[Any], Any] | None = None,
) -> None:
    """Write ``data`` to stdout: as JSON (``as_json(data)`` when given; Structs become objects), as
    the renderable ``table(data)`` builds, or as the one Nagios line ``nagios(data)`` builds."""
    if output == CheckOutput.nagios.value and nagios is not None:
        write(nagios(data) + "\n")
    elif output == Output.json.value or table is None:
        document = msgspec.to_builtins(as_json(data) if as_json else data)
        write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        console().print(table(data))


def human_time(stamp: str | None, now: datetime | None = None) -> str:
    """An ISO 8601 timestamp as the CLI shows every time: ``2026-11-25 12:01:03 UTC (3 min ago)``."""
    if not stamp:
        return "-"
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    ago = (
        "just now"
        if seconds < 5
        else f"{int(seconds)} s ago"
        if seconds < 60
        else f"{int(seconds // 60)} min ago"
        if seconds < 3600
        else f"{int(seconds // 3600)} h ago"
        if seconds < 86400
        else f"{int(seconds // 86400)} d ago"
    )
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({ago})"


def human_size(value: float | None) -> str:
    """A byte count as the CLI shows every size: ``16.0 MB`` (1024-based, PostgreSQL's units)."""
    return format_size(None if value is None else int(value))


def percent(ratio: float) -> str:
    """A ratio as a percentage: ``80%``."""
    return f"{ratio:.0%}"


def diagnose(message: str, details: Sequence[str] = ()) -> None:
    """One diagnostic line on stderr (``details``: indented lines under it)."""
    sys.stderr.write(f"fasterdb-admin: {message}\n" + "".join(f"  {line}\n" for line in details))
    sys.stderr.flush()


def same_terminal() -> bool:
    """Whether stdout and stderr are the same terminal: a person would read a line written to both twice."""
    try:
        out, err = sys.stdout.fileno(), sys.stderr.fileno()
        if not (os.isatty(out) and os.isatty(err)):
            return False
        a, b = os.fstat(out), os.fstat(err)
    except (OSError, ValueError, AttributeError):  # replaced streams (a test runner's) have no descriptor
        return False
    return (a.st_dev, a.st_ino, a.st_rdev) == (b.st_dev, b.st_ino, b.st_rdev)
