"""Byte sizes with PostgreSQL-style units (1024-based, case-insensitive).

Shared by the settings, the HTTP query parameters and the CLI, so that "16MB" means the same
thing everywhere and a typo is an error, never "no limit".
"""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}
# The grammar, once: the parser accepts exactly what this matches (and what comes to whole bytes
# within MAX_SIZE). It is written in the regex subset that Python and JSON Schema (ECMA-262) read
# alike, so the OpenAPI document and the chart's values schema use it as it is; only ASCII
# spaces, never tabs. tests/unit/test_sizes.py checks the three and the README against each other.
SIZE_PATTERN = r"^ *[0-9]+(\.[0-9]+)? *([bB]|[kKmMgGtT][iI]?[bB])? *$"
_SIZE_RE = re.compile(SIZE_PATTERN, re.ASCII)
# Looser, only to tell "unknown unit" apart from "not a size" in the error message.
_SHAPE_RE = re.compile(r"^ *([0-9]+(?:\.[0-9]+)?) *([a-zA-Z]*) *$", re.ASCII)
# Far above any WAL distance that makes sense, low enough to stay an exact int64 in PostgreSQL.
MAX_SIZE = 2**62


class SizeError(ValueError):
    """A byte size that cannot be read."""


def parse_size(value: str | int) -> int:
    """Return the number of bytes in ``value`` ("16MB", "16mib", "1048576", 4096)."""
    if isinstance(value, bool):
        raise SizeError("a size must be a number of bytes or a number with a unit such as 16MB")
    if isinstance(value, int):
        number, unit = Decimal(value), ""
        if value < 0:
            raise SizeError(f"size must not be negative: {value}")
    else:
        shape = _SHAPE_RE.fullmatch(value)  # fullmatch: "$" alone would let a final "\n" through
        if shape and shape.group(2).lower() not in _UNITS:
            raise SizeError(
                f"invalid size unit {shape.group(2)!r} in {value.strip()!r}: "
                "use B, kB, MB, GB, TB (or KiB, MiB, GiB, TiB)"
            )
        if not shape or not _SIZE_RE.fullmatch(value):
            shown = value.strip() or "(empty)"
            raise SizeError(
                f"invalid size {shown!r}: use a number of bytes or a number with a unit "
                "B, kB, MB, GB, TB (or KiB, MiB, GiB, TiB; 1024-based)"
            )
        number, unit = Decimal(shape.group(1)), shape.group(2).lower()
    result = number * _UNITS[unit]
    if result != int(result):
        raise SizeError(f"size {value!r} is not a whole number of bytes")
    if result > MAX_SIZE:
        raise SizeError(f"size {value!r} is too large")
    return int(result)


def format_size(n: int | None) -> str:
    """Render a byte count for humans, PostgreSQL style (1024-based): '16 MB'."""
    if n is None:
        return "-"
    for unit, factor in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if abs(n) >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"
