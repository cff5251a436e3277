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
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fasterdb.sidecar import ReplicaView, View

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


@dataclass(frozen=True)
class Choice:
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
    """Reads and spills per second over the last WINDOW_SECONDS."""

    def __init__(self) -> None:
        self._buckets: deque[list[int]] = deque()  # [second, reads, spills]

    def _bucket(self, now: float) -> list[int]:
        second = int(now)
        while self._buckets and self._buckets[0][0] <= second - WINDOW_SECONDS:
            self._buckets.popleft()
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def read(self, now: float, spill: bool) -> None:
        """Count one read (a spill or not)."""
        bucket = self._bucket(now)
        bucket[1] += 1
        bucket[2] += int(spill)

    def allows_spill(self, now: float, max_share: float) -> bool:
        """Whether one more spill keeps the window within ``max_share`` of its reads (or MIN_SPILLS)."""
        self._bucket(now)
        reads = sum(b[1] for b in self._buckets) + 1
        spills = sum(b[2] for b in self._buckets) + 1
        return spills <= MIN_SPILLS or spills <= max_share * reads


def _usable(replica: ReplicaView | None, age: float) -> tuple[float, int] | None:
    if replica is None or replica.state not in SERVING_STATES:
        return None
    if replica.lag_seconds is None or replica.lag_bytes is None:
        return None
    return replica.lag_seconds + age, replica.lag_bytes


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
        self.counts: Counter[str] = Counter()
        self._turn = itertools.count()

    def observe(self, view: View) -> None:
        """A new view from the sidecar: every rotation (every budget seen so far) is updated."""
        self.view = view
        self._rotations(self.default)  # the default budget is tracked from the start
        now = self.clock()
        age = view.age(now)
        for budget, rotations in self.rotations.items():
            for name, rotation in rotations.items():
                rotation.update(_usable(view.replicas.get(name), age), budget, now)

    def _rotations(self, budget: Budget) -> dict[str, Rotation]:
        rotations = self.rotations.get(budget)
        if rotations is None:
            rotations = self.rotations[budget] = {name: Rotation() for name in self.replicas}
            if self.view is not None:  # a budget first seen now starts from the current view
                now = self.clock()
                for name, rotation in rotations.items():
                    lag = _usable(self.view.replicas.get(name), self.view.age(now))
                    if lag is not None and lag[0] <= budget.seconds * ENTER_FRACTION:
                        rotation.in_rotation = lag[1] <= budget.bytes * ENTER_FRACTION
        return rotations

    def knows(self, now: float) -> bool:
        """Whether the view is fresh enough to route by."""
        return self.view is not None and self.view.age(now) <= self.knowledge_max_age

    def choose(self, budget: Budget | None = None, position: int | None = None) -> Choice:
        """Where the next read goes (``position``: a read-after token's WAL position)."""
        now = self.clock()
        choice = self._choose(budget or self.default, position, now)
        self.window.read(now, spill=choice.reason == "lag")
        self.counts[f"route:{choice.reason}"] += 1
        return choice

    def _choose(self, budget: Budget, position: int | None, now: float) -> Choice:
        if not self.replicas:
            return Choice(PRIMARY, "no_replicas")
        if not self.knows(now):
            return Choice(PRIMARY, "unknown")
        assert self.view is not None
        rotations = self._rotations(budget)
        ready = [name for name in self.replicas if rotations[name].in_rotation]
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
        lags = {n: lag for n in self.replicas if (lag := _usable(self.view.replicas.get(n), age)) is not None}
        return min(lags, key=lambda n: (lags[n][0], lags[n][1])) if lags else None

    def lag_seconds(self, name: str) -> float:
        """The replica's lag in seconds as the view says, its age included (inf when unknown)."""
        if self.view is None:
            return math.inf
        lag = _usable(self.view.replicas.get(name), self.view.age(self.clock()))
        return math.inf if lag is None else lag[0]
