"""WAL positions: PostgreSQL's ``pg_lsn`` text (``16/B374D848``) and byte positions."""

from __future__ import annotations


def parse_lsn(text: str | None) -> int | None:
    """A pg_lsn such as ``16/B374D848`` as a byte position (None for None or empty)."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(position: int | None) -> str | None:
    """A byte position as PostgreSQL writes a pg_lsn."""
    if position is None:
        return None
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
