"""Transaction-ID wraparound: how close each database is to the limit, as a fraction of it.

(WAL held by replication slots needs no folding: the slots view is reported as the server gives it.)
"""

from __future__ import annotations

from .sql import Wraparound

# Transaction IDs (and multixact IDs) are 32-bit and compared modulo 2^32: a row older than 2^31
# would turn into the future. PostgreSQL refuses new IDs shortly before; this is the fraction's 1.
WRAPAROUND_LIMIT = 2**31


def wraparound_ratio(age: int) -> float:
    """An XID or MXID age as a fraction of the wraparound limit (1: the server stops assigning IDs)."""
    return age / WRAPAROUND_LIMIT


def worst_ratios(view: Wraparound) -> tuple[float, float]:
    """(the highest XID ratio, the highest MXID ratio) of every database (0 without databases)."""
    return (
        max((wraparound_ratio(d.xid_age) for d in view.databases), default=0.0),
        max((wraparound_ratio(d.mxid_age) for d in view.databases), default=0.0),
    )
