"""The split-brain fence: money moves only while exactly one server takes writes.

Every host the sidecar can reach — each host of the primary DSN (a multi-host DSN names the
standbys too) and of every replica DSN — is asked every ``FASTERDB_SPLIT_BRAIN_CHECK_INTERVAL``
seconds: through each pool's monitor connection (no connection of its own), and each host of a
multi-host DSN on a connection of its own. From the round that finds two different servers
out of recovery and writable (a promoted replica while the old primary still runs) until a round
finds at most one, ``reason()`` says why; so it does when no round has finished recently (the
sidecar cannot tell which server is the primary). Transfers and job batches ask ``reason()``: a
read of memory, no database round trip on their path while nothing is wrong.

A host that does not answer is not counted as a writer: an old primary that is down, frozen or
partitioned away is no second primary as far as the sidecar can see. What it cannot see is covered
by the replication acknowledgement (``replication.ack``): a commit is acknowledged only once a
standby has it, and a promoted replica receives nothing from the old primary any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from fasterdb.dsn import each_host, parse_dsn
from fasterdb.pools.managed import ManagedPool, PoolConfig
from fasterdb.tasks import cancel_and_wait

from ..transitions import TransitionLog
from .sql import read_role

log = logging.getLogger("fasterdb.fence")


@dataclass(frozen=True)
class Watched:
    """One host the fence watches, named after the setting it comes from (never its address)."""

    name: str
    pool: ManagedPool  # asked on its monitor connection


@dataclass(frozen=True)
class FenceView:
    """One round: the writable servers (by the name of a host that reached each) and when."""

    writers: tuple[str, ...]
    unreachable: tuple[str, ...]
    finished_at: float  # time.monotonic()

    @property
    def split_brain(self) -> bool:
        """Two or more different servers take writes."""
        return len(self.writers) > 1


def host_dsns(named_dsns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(label, single-host DSN) per distinct host of the DSNs: ``name``, or ``name[i]`` for the
    i-th host of a multi-host DSN."""
    seen: set[tuple[str, int]] = set()
    out: list[tuple[str, str]] = []
    for name, dsn in named_dsns:
        hosts = each_host(dsn)
        for i, single in enumerate(hosts, 1):
            host, port = parse_dsn(single).hosts[0]
            if (host, port or 5432) not in seen:
                seen.add((host, port or 5432))
                out.append((name if len(hosts) == 1 else f"{name}[{i}]", single))
    return out


def watched_hosts(pools: list[ManagedPool], named_dsns: list[tuple[str, str]], config: PoolConfig) -> list[Watched]:
    """What the fence asks: every pool on its monitor connection (no connection of its own), and
    every host of a multi-host DSN on a connection of its own (the pool reaches only one of them)."""
    out = [Watched(pool.name, pool) for pool in pools]
    multi = [(name, dsn) for name, dsn in named_dsns if len(parse_dsn(dsn).hosts) > 1]
    for label, single in host_dsns(multi):
        pool = ManagedPool(f"fence:{label}", "replica", single, config)
        pool.target_session_attrs = "any"  # whatever the server is now: that is the question
        out.append(Watched(label, pool))
    return out


class Fence:
    """Watches every reachable server's role; ``reason()`` is None while at most one takes writes."""

    def __init__(self, watched: list[Watched], interval: float, deadline: float) -> None:
        self.watched = watched
        self.interval = interval
        self.deadline = deadline
        # Without a round for this long the sidecar cannot tell which server is the primary.
        self.stale_after = max(1.0, 4 * interval) + deadline
        self.enabled = interval > 0 and len(watched) > 1  # one host cannot disagree with itself
        self._own = [w for w in watched if w.pool.name.startswith("fence:")]  # the connections it opened
        self.view: FenceView | None = None
        self.transitions = TransitionLog(log)
        self._task: asyncio.Task[None] | None = None
        self._round: asyncio.Task[FenceView] | None = None

    def reason(self) -> str | None:
        """Why money must not move now (None: it may); reads memory only."""
        if not self.enabled:
            return None
        view = self.view
        if view is None:
            return "cannot tell which server is the primary: not checked yet"
        age = time.monotonic() - view.finished_at
        if age > self.stale_after:
            return f"cannot tell which server is the primary: last checked {age:.1f}s ago"
        if view.split_brain:
            return f"split brain: {len(view.writers)} servers accept writes ({', '.join(view.writers)})"
        return None

    @property
    def fenced(self) -> bool:
        """Whether money movement is fenced now (for the metric)."""
        return self.reason() is not None

    async def settled(self) -> str | None:
        """``reason()``, after one fresh round (bounded by the deadline) when the view is missing or
        stale — so a start or a stalled loop waits a moment instead of refusing at once."""
        reason = self.reason()
        view = self.view
        if reason is None or (view is not None and view.split_brain and not self._stale(view)):
            return reason
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.deadline):  # /health/db answers within its timeout
                await self.check()
        return self.reason()

    def _stale(self, view: FenceView) -> bool:
        return time.monotonic() - view.finished_at > self.stale_after

    async def check(self) -> FenceView:
        """One round over every watched host (concurrent callers share it)."""
        if self._round is None:
            self._round = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._round)

    async def _check(self) -> FenceView:
        try:
            results = await asyncio.gather(*(read_role(w.pool, self.deadline) for w in self.watched))
            writers: dict[str, str] = {}
            unreachable = []
            for w, result in zip(self.watched, results, strict=True):
                if result.value is None:
                    unreachable.append(w.name)
                elif result.value.writable:
                    writers.setdefault(result.value.server, w.name)
            view = FenceView(tuple(writers.values()), tuple(unreachable), time.monotonic())
            self.view = view
            reason = self.reason()
            self.transitions.record(
                "fence",
                reason is None,
                "split_brain" if view.split_brain else None,
                down=f"money movement fenced: {reason}",
                up="money movement resumes: one server accepts writes",
            )
            return view
        finally:
            self._round = None

    def start(self) -> None:
        """Start watching (nothing to watch with one host, or an interval of 0)."""
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="split-brain-fence")

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # never let the watcher die; a missing round reads as "cannot tell"
                log.exception("split-brain check failed; continuing")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        """Stop watching and close the watch connections."""
        await cancel_and_wait(self._task)
        await asyncio.gather(*(w.pool.close(1.0) for w in self._own), return_exceptions=True)

    async def replace_dsns(self, named_dsns: list[tuple[str, str]]) -> None:
        """Rotated credentials: each watched host connects with its new DSN from now on."""
        fresh = dict(host_dsns([(n, d) for n, d in named_dsns if len(parse_dsn(d).hosts) > 1]))
        for w in self._own:
            if w.name in fresh:
                await w.pool.replace_dsn(fresh[w.name])
                w.pool.target_session_attrs = "any"
