"""The application's pools, as the kit in the pod's own processes reports them.

Each application process (``fasterdb.Database``) posts an ``AppReport`` once per interval over
loopback. A report is shown beside the sidecar's own pools (``/pools``, ``/pools/stream``, the
status page, ``/metrics`` with ``source="app"``) until it is ``EXPIRY_INTERVALS`` intervals old:
an application that stops reporting (stopped, crashed, stuck) disappears within a few seconds
rather than showing frozen figures. At most ``MAX_PROCESSES`` processes are kept (a pod's
workers), so a misbehaving reporter cannot grow the sidecar's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fasterdb.contract import AppReport

EXPIRY_INTERVALS = 3
MAX_PROCESSES = 64


class TooManyProcesses(Exception):
    """A report from one more process than MAX_PROCESSES."""


@dataclass(frozen=True)
class Received:
    """A report and when it expires (time.monotonic())."""

    report: AppReport
    expires: float


class AppReports:
    """The latest report of every application process of the pod, each until it expires."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._latest: dict[tuple[str, str], Received] = {}

    def accept(self, report: AppReport) -> float:
        """Keep ``report`` (replacing the process's previous one); returns seconds until it expires."""
        key = (report.app, report.instance)
        self._expire()
        if key not in self._latest and len(self._latest) >= MAX_PROCESSES:
            raise TooManyProcesses(f"reports from more than {MAX_PROCESSES} processes")
        ttl = EXPIRY_INTERVALS * report.interval
        self._latest[key] = Received(report, self._clock() + ttl)
        return ttl

    def current(self) -> list[AppReport]:
        """Every unexpired report, by application and process."""
        self._expire()
        return [self._latest[key].report for key in sorted(self._latest)]

    def primary_pool_max(self) -> int:
        """The most connections the pod's application processes may open to the primary together."""
        return sum(p.max_size for r in self.current() for p in r.pools if p.role == "primary")

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, received in self._latest.items() if received.expires <= now]:
            del self._latest[key]
