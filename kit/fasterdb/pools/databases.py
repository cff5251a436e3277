"""The primary pool and the replica pools of one owner (the sidecar), opened and closed together."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fasterdb.pools.managed import ManagedPool


class Databases:
    """The primary pool and the replica pools, opened and closed together."""

    def __init__(self, primary: ManagedPool, replicas: list[ManagedPool]) -> None:
        self.primary = primary
        self.replicas = replicas

    def __iter__(self) -> Iterator[ManagedPool]:
        yield self.primary
        yield from self.replicas

    def named(self, name: str) -> ManagedPool | None:
        """The pool called ``name``, if there is one."""
        return next((p for p in self if p.name == name), None)

    async def open(self) -> None:
        """Open every pool (no connection is made here)."""
        for pool in self:
            await pool.open()

    async def close(self, timeout: float = 10.0) -> None:
        """Close every pool concurrently, each within ``timeout``."""
        await asyncio.gather(*(p.close(timeout) for p in self), return_exceptions=True)
