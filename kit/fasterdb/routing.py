"""Where a read goes: a replica within the read's staleness budget, else the primary, within limits.

GitLab's load balancer is the model (a host serves reads while it is within both a seconds and a
bytes limit, checked on an interval, not per read), with PgDog's lesson added: a replica that falls
behind leaves the rotation at once and returns only after it has stayed well within the budget
(``ENTER_FRACTION`` of it) for ``HOLD_DOWN_SECONDS``, so a replica catching up does not flap.

The lag a decision uses is what the sidecar measured plus how old that measurement is: lag grows
at most one second per second, so a replica counted within budget really is. When replicas serve
but none within the budget, the read spills onto the primary, but at most ``spill_max_share`` of
the reads of the last ``WINDOW_SECONDS`` do (``MIN_SPILLS`` always may: a trickle is no flood);
past that the policy decides (``reject``: the read gets a 503; ``stale``: the freshest replica
serves it, marked stale). When no replica can serve at all (down, promoted, in a split brain), or
the sidecar's view is missing or older than ``knowledge_max_age``, reads go to the primary and are
counted as such, uncapped: there is nothing better to do.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

from fasterdb.sidecar import View

ENTER_FRACTION = 0.5  # back into rotation only at or below this share of the budget ...
HOLD_DOWN_SECONDS = 2.0  # ... for this long
WINDOW_SECONDS = 10.0  # the spill cap's window
MIN_SPILLS = 10  # spills a window always allows: the cap protects the primary from floods, not trickles
SERVING_STATES = ("streaming", "catching_up", "replay_paused", "disconnected")
PRIMARY = "primary"
Reason = Literal["replica", "no_replicas", "lag", "down", "unknown", "read_after", "rejected", "stale"]


@dataclass(frozen=True)
class Budget:
    """How stale a read may be."""

    seconds: float
    bytes: int


class Choice(NamedTuple):
    """Where one read goes, and why. ``wait_on``: a replica to wait on for a read-after position."""

    target: str  # a replica's name, or "primary"; "" when rejected
    reason: Reason
    wait_on: str | None = None


class Rotation:
    """One replica under one budget: in rotation or not, with hysteresis."""

    __slots__ = ("in_rotation", "good_since")

    def __init__(self) -> None:
        self.in_rotation = False
        self.good_since: float | None = None

    def update(self, lag: tuple[float, int] | None, budget: Budget, now: float) -> None:
        """A new measurement (lag seconds with the view's age, lag bytes; None: unknown or unusable)."""
        if lag is None:
            self.in_rotation, self.good_since = False, None
            return
        seconds, size = lag
        if self.in_rotation:
            if seconds > budget.seconds or size > budget.bytes:
                self.in_rotation, self.good_since = False, None
            return
        if seconds <= budget.seconds * ENTER_FRACTION and size <= budget.bytes * ENTER_FRACTION:
            self.good_since = now if self.good_since is None else self.good_since
            if now - self.good_since >= HOLD_DOWN_SECONDS:
                self.in_rotation = True
        else:
            self.good_since = None


class SpillWindow:
    """Reads and spills per second over the last WINDOW_SECONDS (a ring of one-second buckets)."""

    __slots__ = ("_seconds", "_reads", "_spills")

    def __init__(self) -> None:
        size = int(WINDOW_SECONDS)
        self._seconds = [-1] * size  # which second each slot counts
        self._reads = [0] * size
        self._spills = [0] * size

    def add(self, now: float, reads: int, spills: int = 0) -> None:
        """Count ``reads`` reads, ``spills`` of them spills, in the second of ``now``."""
        second = int(now)
        slot = second % len(self._seconds)
        if self._seconds[slot] != second:
            self._seconds[slot], self._reads[slot], self._spills[slot] = second, 0, 0
        self._reads[slot] += reads
        self._spills[slot] += spills

    def allows_spill(self, now: float, max_share: float) -> bool:
        """Whether one more spill keeps the window within ``max_share`` of its reads (or MIN_SPILLS)."""
        oldest = int(now) - len(self._seconds)
        live = [i for i, second in enumerate(self._seconds) if second > oldest]
        reads = sum(self._reads[i] for i in live) + 1
        spills = sum(self._spills[i] for i in live) + 1
        return spills <= MIN_SPILLS or spills <= max_share * reads


class Router:
    """Decides each read's target from the latest view; counts what it decided."""

    def __init__(
        self,
        replicas: list[str],
        default: Budget,
        *,
        spill_max_share: float,
        policy: Literal["reject", "stale"],
        knowledge_max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = replicas
        self.default = default
        self.spill_max_share = spill_max_share
        self.policy = policy
        self.knowledge_max_age = knowledge_max_age
        self.clock = clock
        self.view: View | None = None
        self.rotations: dict[Budget, dict[str, Rotation]] = {}
        self.window = SpillWindow()
        # Every reason counted from the start (at 0), so its series exists before the first such read.
        self._counts: Counter[str] = Counter({f"route:{reason}": 0 for reason in get_args(Reason)})
        # Reads routed by the fast path, not yet in the window and the counts: one increment per
        # read, tallied on every other decision, every view and every look at the counts. The
        # window may thus see them up to one view interval late (its span is WINDOW_SECONDS).
        # The fast path's fields are public: the kit's read inlines it (fasterdb.database.Database.read).
        self.fast_reads = 0
        self._turn = itertools.count()
        # The common read (default budget, no token) while the view holds: the replicas in
        # rotation, taken in turn, until the first of them could have drifted past the budget or
        # the view aged out.
        self.fast: Iterator[Choice] = iter(())
        self._fast_ready: tuple[Choice, ...] = ()
        self.fast_until = -math.inf
        # Each replica's last measured lag (seconds, bytes), for while the primary is down.
        self._last_lag: dict[str, tuple[float, int]] = {}

    def _usable(self, name: str, age: float) -> tuple[float, int] | None:
        """(lag seconds, lag bytes) a read would see on replica ``name``, or None: it cannot serve.

        Normally the measured lag plus the view's age (lag grows at most 1 s per second). While the
        sidecar finds the primary unavailable there is no position to measure against, but nor are
        there new commits to fall behind on: the lag last measured holds (a read-after token is
        still checked on the replica itself).
        """
        assert self.view is not None
        replica = self.view.replicas.get(name)
        if replica is None or replica.state not in SERVING_STATES:
            return None
        if replica.lag_seconds is not None and replica.lag_bytes is not None:
            return replica.lag_seconds + age, replica.lag_bytes
        if self.view.primary_error not in (None, "not primary"):
            return self._last_lag.get(name)
        return None

    def observe(self, view: View) -> None:
        """A new view from the sidecar: every rotation (every budget seen so far) is updated."""
        self._tally(self.clock())
        self.view = view
        for name, replica in view.replicas.items():
            if replica.lag_seconds is not None and replica.lag_bytes is not None:
                self._last_lag[name] = (replica.lag_seconds, replica.lag_bytes)
        self._rotations(self.default)  # the default budget is tracked from the start
        now = self.clock()
        age = view.age(now)
        for budget, rotations in self.rotations.items():
            for name, rotation in rotations.items():
                rotation.update(self._usable(name, age), budget, now)
        self._refresh_fast(now)

    def _refresh_fast(self, now: float) -> None:
        assert self.view is not None
        age, budget = self.view.age(now), self.default
        ready, until = [], now + self.knowledge_max_age - age
        for name, rotation in self.rotations[budget].items():
            lag = self._usable(name, age)
            if rotation.in_rotation and lag is not None and lag[0] <= budget.seconds:
                ready.append(Choice(name, "replica"))
                until = min(until, now + budget.seconds - lag[0])  # lag grows 1 s per second at most
        if tuple(ready) != self._fast_ready:  # the same replicas: the turn goes on where it was
            self._fast_ready = tuple(ready)
            self.fast = itertools.cycle(ready)
        self.fast_until = until if ready else -math.inf

    def _rotations(self, budget: Budget) -> dict[str, Rotation]:
        rotations = self.rotations.get(budget)
        if rotations is None:
            rotations = self.rotations[budget] = {name: Rotation() for name in self.replicas}
            if self.view is not None:  # a budget first seen now starts from the current view
                now = self.clock()
                for name, rotation in rotations.items():
                    lag = self._usable(name, self.view.age(now))
                    if lag is not None and lag[0] <= budget.seconds * ENTER_FRACTION:
                        rotation.in_rotation = lag[1] <= budget.bytes * ENTER_FRACTION
        return rotations

    def knows(self, now: float) -> bool:
        """Whether the view is fresh enough to route by."""
        return self.view is not None and self.view.age(now) <= self.knowledge_max_age

    def choose(self, budget: Budget | None = None, position: int | None = None) -> Choice:
        """Where the next read goes (``position``: a read-after token's WAL position)."""
        now = self.clock()
        if budget is None and position is None and now <= self.fast_until:
            self.fast_reads += 1
            return next(self.fast)
        self._tally(now)
        choice = self._choose(budget or self.default, position, now)
        self.window.add(now, 1, choice.reason == "lag")
        self._counts[f"route:{choice.reason}"] += 1
        return choice

    @property
    def counts(self) -> Counter[str]:
        """Reads routed, by reason (``route:replica``, ``route:lag``, ...)."""
        self._tally(self.clock())
        return self._counts

    def _tally(self, now: float) -> None:
        """Move the fast path's reads into the window and the counts."""
        reads = self.fast_reads
        if reads:
            self.fast_reads = 0
            self.window.add(now, reads)
            self._counts["route:replica"] += reads

    def _choose(self, budget: Budget, position: int | None, now: float) -> Choice:
        if not self.replicas:
            return Choice(PRIMARY, "no_replicas")
        if not self.knows(now):
            return Choice(PRIMARY, "unknown")
        assert self.view is not None
        rotations = self._rotations(budget)
        age = self.view.age(now)
        ready = [
            name
            for name in self.replicas
            if rotations[name].in_rotation and (lag := self._usable(name, age)) is not None and lag[0] <= budget.seconds
        ]
        if position is not None:
            return self._read_after(ready, position)
        if ready:
            return Choice(ready[next(self._turn) % len(ready)], "replica")
        freshest = self._freshest(now)
        if freshest is None:  # no replica can serve at all (down, promoted, split): nothing to cap for
            return Choice(PRIMARY, "down")
        if self.window.allows_spill(now, self.spill_max_share):
            return Choice(PRIMARY, "lag")
        if self.policy == "stale":
            return Choice(freshest, "stale")
        return Choice("", "rejected")

    def _read_after(self, ready: list[str], position: int) -> Choice:
        """A replica known to have replayed ``position``, else one to wait on, else the primary."""
        assert self.view is not None
        known = {name: self.view.replicas[name].replay_lsn for name in ready if name in self.view.replicas}
        caught_up = [name for name in ready if (known.get(name) or -1) >= position]
        if caught_up:
            return Choice(caught_up[next(self._turn) % len(caught_up)], "replica")
        if ready:  # the one that had replayed the most, checked again on its own connection
            best = max(ready, key=lambda name: known.get(name) or -1)
            return Choice(PRIMARY, "read_after", wait_on=best)
        return Choice(PRIMARY, "read_after")

    def _freshest(self, now: float) -> str | None:
        assert self.view is not None
        age = self.view.age(now)
        lags = {n: lag for n in self.replicas if (lag := self._usable(n, age)) is not None}
        return min(lags, key=lambda n: (lags[n][0], lags[n][1])) if lags else None

    def lag_seconds(self, name: str) -> float:
        """The replica's lag in seconds as the view says, its age included (inf when unknown)."""
        if self.view is None:
            return math.inf
        lag = self._usable(name, self.view.age(self.clock()))
        return math.inf if lag is None else lag[0]
