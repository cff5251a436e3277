"""The one output function for every command: table (rich), json, or nagios; stdout for data."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text


class Output(StrEnum):
    """The --output choices shared by every command."""

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


def make_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A rich table with the given header and rows (None renders as '-')."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None else v if isinstance(v, Text) else str(v) for v in row))
    return table


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
        sys.stdout.write(nagios(data) + "\n")
        sys.stdout.flush()
        return
    if output == Output.json.value or table is None:
        document = msgspec.to_builtins(as_json(data) if as_json else data)
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()
        return
    # Not a terminal (a pipe, a file, a test): don't squeeze tables into 80 columns.
    Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160).print(table(data))


def human_time(stamp: str | None, now: datetime | None = None) -> str:
    """An ISO 8601 timestamp as people read it: ``2026-11-25 12:01:03 UTC (3 min ago)``."""
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


def diagnose(message: str) -> None:
    """One diagnostic line on stderr."""
    sys.stderr.write(f"fasterdb-admin: {message}\n")
    sys.stderr.flush()
