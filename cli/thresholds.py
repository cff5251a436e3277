"""Threshold options with units: durations (``90``, ``90s``, ``5m``, ``1h``), sizes (``10GB``), ratios.

Each parser is a Typer-friendly function: a bad value is a usage error (exit 3) naming the option.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import typer

from fasterdb.sizes import parse_size

T = TypeVar("T")
N = TypeVar("N", int, float)

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)?", re.ASCII | re.IGNORECASE)
_UNIT = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``5m``, ``1h``, ``1d``; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (examples: 90, 90s, 5m, 1h)")
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _UNIT[unit]


def parsed(value: str | None, parse: Callable[[str], T], option: str | None = None) -> T | None:
    """An optional option read with ``parse``; its ValueError becomes a usage error (exit 3)."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def duration(value: str | None, option: str) -> float | None:
    """An optional duration option, or a usage error."""
    return parsed(value, parse_duration, option)


def size(value: str | None, option: str) -> int | None:
    """An optional size option (PostgreSQL units, 1024-based), or a usage error."""
    return parsed(value, parse_size, option)


def ordered(warning: float | None, critical: float | None, options: tuple[str, str], *, below: bool = False) -> None:
    """The one warn-before-crit rule: a usage error when the warning threshold is beyond the critical
    one (larger for "alert above"; smaller for "alert below", ``below``)."""
    if warning is None or critical is None:
        return
    if below and warning < critical:
        raise typer.BadParameter(f"must not be smaller than {options[1]}", param_hint=options[0])
    if not below and warning > critical:
        raise typer.BadParameter(f"must not be larger than {options[1]}", param_hint=options[0])


def in_force(
    warning: N | None, critical: N | None, defaults: tuple[N, N], options: tuple[str, str], *, below: bool = False
) -> tuple[N, N]:
    """The thresholds in force: those given, else the defaults. A given warning beyond the critical one
    is a usage error; a default warning is never beyond a critical threshold that was given."""
    ordered(warning, critical, options, below=below)
    crit = defaults[1] if critical is None else critical
    warn = warning if warning is not None else (max if below else min)(defaults[0], crit)
    ordered(warn, crit, options, below=below)
    return warn, crit


def human_seconds(seconds: float | None) -> str:
    """``4.2s``, ``6m12s``, ``2h05m``, ``3d4h`` ('-' when unknown)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600}h"
