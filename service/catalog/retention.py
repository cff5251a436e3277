"""What keeps the server from letting go: WAL held by replication slots, transaction IDs not frozen."""

from __future__ import annotations

from fasterdb.contract import DatabaseAge, SlotBody, SlotsBody, WraparoundBody

from ..health.sql import iso
from .sql import Slot, Wraparound

# Transaction IDs (and multixact IDs) are 32-bit and compared modulo 2^32: a row older than 2^31
# would turn into the future. PostgreSQL refuses new IDs shortly before; this is the fraction's 1.
WRAPAROUND_LIMIT = 2**31


def slots_body(slots: list[Slot], pool: str, at: float) -> SlotsBody:
    """The /db/slots body."""
    return SlotsBody(
        pool=pool,
        collected_at=iso(at),
        slots=[
            SlotBody(
                s.name,
                s.type,
                s.active,
                s.wal_status,
                s.safe_wal_size,
                s.retained_bytes,
                s.inactive_seconds,
                s.xmin_age,
                s.catalog_xmin_age,
                s.temporary,
                s.database,
            )
            for s in slots
        ],
    )


def wraparound_body(view: Wraparound, pool: str, at: float) -> WraparoundBody:
    """The /db/wraparound body: each database's ages as a fraction of the wraparound limit."""
    databases = [
        DatabaseAge(d.name, d.xid_age, d.mxid_age, d.xid_age / WRAPAROUND_LIMIT, d.mxid_age / WRAPAROUND_LIMIT)
        for d in view.databases
    ]
    return WraparoundBody(
        pool=pool,
        collected_at=iso(at),
        databases=databases,
        autovacuum_freeze_max_age=view.freeze_max_age,
        autovacuum_multixact_freeze_max_age=view.multixact_freeze_max_age,
        max_xid_ratio=max((d.xid_ratio for d in databases), default=0.0),
        max_mxid_ratio=max((d.mxid_ratio for d in databases), default=0.0),
    )
