"""Nagios plugin conventions: threshold ranges, perfdata, and the one status line.

From the Nagios plugin development guidelines: a range ``start:end`` alerts when the value is
outside it (inclusive ends); ``10`` means ``0:10``, ``10:`` means 10 to infinity, ``~`` is minus
infinity, and a leading ``@`` inverts it (alert inside). Perfdata is
``'label'=value[UOM];warn;crit;min;max``. The plugin prints exactly one line for every outcome,
UNKNOWN included, and exits 0/1/2/3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from .exitcodes import Exit

_END = r"(~|[-+]?[0-9]+(?:\.[0-9]+)?)"
_RANGE = re.compile(rf"(@)?(?:{_END}:)?({_END}?)", re.ASCII)


@dataclass(frozen=True)
class Range:
    """A threshold range; ``alerts(value)`` tells whether the value crosses it."""

    text: str
    start: float
    end: float
    inside: bool = False

    def alerts(self, value: float) -> bool:
        """True when ``value`` lies outside [start, end] (inside, for an ``@`` range)."""
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def describe(self, unit: Callable[[float], str] = lambda v: plain(v)) -> str:
        """When it alerts, for people: ``above 16.0 MB``, ``below 30``, ``outside 1-2``, ``inside 0-100``."""
        if self.inside:
            if self.start == -math.inf:
                return f"at or below {unit(self.end)}"
            if self.end == math.inf:
                return f"at or above {unit(self.start)}"
            return f"inside {unit(self.start)}-{unit(self.end)}"
        if self.end == math.inf:
            return "never" if self.start == -math.inf else f"below {unit(self.start)}"
        if self.start in (0, -math.inf):
            return f"above {unit(self.end)}"
        return f"outside {unit(self.start)}-{unit(self.end)}"

    @classmethod
    def above(cls, limit: float) -> Range:
        """Alert above ``limit`` (the range ``limit``, or ``~:limit`` for a negative one)."""
        text = plain(limit) if limit >= 0 else f"~:{plain(limit)}"
        return cls(text, 0.0 if limit >= 0 else -math.inf, limit)


def parse_range(text: str) -> Range:
    """A Nagios range (``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``); ValueError says what is wrong."""
    match = _RANGE.fullmatch(text.strip())
    if not text.strip() or match is None or (match.group(2) is None and not match.group(3)):
        raise ValueError(f"{text!r} is not a Nagios range (examples: 10, 10:, ~:10, 10:20, @10:20)")
    inside = match.group(1) is not None
    start_text, end_text = match.group(2), match.group(3)
    if start_text is None:  # "10": 0..10
        if end_text == "~":
            raise ValueError(f"{text!r} is not a Nagios range (examples: 10, 10:, ~:10, 10:20, @10:20)")
        start, end = 0.0, float(end_text)
    else:
        start = -math.inf if start_text == "~" else float(start_text)
        end = math.inf if end_text in ("", "~") else float(end_text)
    if start > end:
        raise ValueError(f"{text!r}: the start of a range must not be above its end")
    return Range(text.strip(), start, end, inside)


def judge(value: float | None, warning: Range | None, critical: Range | None) -> Exit:
    """CRITICAL or WARNING when ``value`` crosses that range, else OK (an unknown value is OK here)."""
    if value is None:
        return Exit.OK
    if critical is not None and critical.alerts(value):
        return Exit.CRITICAL
    if warning is not None and warning.alerts(value):
        return Exit.WARNING
    return Exit.OK


def plain(value: float) -> str:
    """A number as Nagios reads it: digits and a point, never an exponent (1048576, 0.000812)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.9f}".rstrip("0").rstrip(".")


def perfdata(
    label: str,
    value: float | None,
    uom: str = "",
    warning: Range | None = None,
    critical: Range | None = None,
    minimum: float | None = 0,
    maximum: float | None = None,
) -> str:
    """One perfdata item, ``'label'=value[UOM];warn;crit;min;max`` (``U`` when the value is unknown)."""
    label = label.replace("'", "").replace("=", "_")
    shown = "U" if value is None else plain(value) + uom
    fields = [
        warning.text if warning else "",
        critical.text if critical else "",
        "" if minimum is None else plain(minimum),
        "" if maximum is None else plain(maximum),
    ]
    return f"'{label}'={shown};" + ";".join(fields)


def status_line(service: str, code: Exit, summary: str, perf: list[str] | None = None) -> str:
    """``SERVICE STATE - summary | perfdata``, one line (newlines in the summary become spaces)."""
    text = " ".join(summary.split())
    line = f"{service} {code.name} - {text}"
    if perf:
        line += " | " + " ".join(perf)
    return line
