"""How fast the probes follow a real fault and its end, with the default settings.

* A primary freeze (SIGSTOP of the postmaster and every backend): seconds from the freeze to the
  first 503 of /health/db (target <= 1.1 s), and from the SIGCONT to the first 200 again
  (target <= 0.1 s: a cached failure must not outlive the fault).
* A replay pause (pg_wal_replay_pause while 20 MB of WAL is written): seconds from
  pg_wal_replay_resume() to the first 200 of /health/replicas again (target <= 0.2 s; the replay
  of the 20 MB itself is part of it, as it is for Patroni).

One client polls the endpoint back to back (keep-alive, 2 ms apart) the whole time; each figure
is the median of the rounds. How long a fault is held varies from round to round, so it meets the
cache at a different phase each time.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import httpx

from devtools.hot_standby import HotStandbyCluster
from tests.bench.common import Figure, median
from tests.faults import freeze, pause_replay, resume_replay, write_wal
from tests.harness import SidecarProcess, wait_for

ROUNDS = 5


@dataclass
class Poller:
    """Polls one URL back to back in a thread; keeps (received at, status) of every answer."""

    url: str
    seen: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = 0
                self.seen.append((time.monotonic(), status))
                self._stop.wait(0.002)

    def first(self, status: int, after: float) -> float | None:
        """When the first answer with ``status`` arrived after ``after`` (None: none yet)."""
        for at, got in list(self.seen):
            if at > after and got == status:
                return at
        return None

    def wait(self, status: int, after: float, timeout: float = 15) -> float:
        """Seconds from ``after`` to the first answer with ``status`` (waiting for it)."""
        return wait_for(lambda: self.first(status, after), timeout, 0.01, f"{status} from {self.url}") - after

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _freeze_rounds(pg: HotStandbyCluster, poller: Poller) -> tuple[list[float], list[float]]:
    down, up = [], []
    for _ in range(ROUNDS):
        poller.wait(200, time.monotonic())
        time.sleep(random.uniform(0.1, 1.1))  # the freeze meets the cache at a random phase
        thaw = freeze(pg.primary)
        frozen_at = time.monotonic()
        try:
            down.append(poller.wait(503, frozen_at))
            time.sleep(random.uniform(0.5, 1.5))  # how long the fault lasts after it shows
        finally:
            thaw()
        up.append(poller.wait(200, time.monotonic()))
    return down, up


def _replay_rounds(pg: HotStandbyCluster, poller: Poller) -> list[float]:
    replica = pg.replica_nodes[0]
    up = []
    for _ in range(ROUNDS):
        poller.wait(200, time.monotonic())
        pause_replay(pg, replica)
        try:
            write_wal(pg, 20)  # over the default FASTERDB_MAX_LAG_BYTES (16MB)
            poller.wait(503, time.monotonic() - 0.001)
            time.sleep(random.uniform(0.2, 1.0))
        finally:
            resume_replay(pg, replica)
        up.append(poller.wait(200, time.monotonic()))
    return up


def main() -> list[Figure]:
    """Run the benchmark and print its figures."""
    with HotStandbyCluster(replicas=1) as pg, SidecarProcess(pg.sidecar_env()) as sidecar:
        poller = Poller(sidecar.url + "/health/db")
        try:
            down, up = _freeze_rounds(pg, poller)
        finally:
            poller.close()
        poller = Poller(sidecar.url + "/health/replicas")
        try:
            replay = _replay_rounds(pg, poller)
        finally:
            poller.close()
    print("== recovery: probes following a real fault and its end (default settings, 1 polling client) ==")
    figures = [
        Figure("first 503 after a primary freeze", median(down), "s", "<= 1.1", median(down) <= 1.1, "never"),
        Figure("healthy again after SIGCONT", median(up), "s", "<= 0.1", median(up) <= 0.1, "0.05 s"),
        Figure("healthy again after a replay pause", median(replay), "s", "<= 0.2", median(replay) <= 0.2, "0.17 s"),
    ]
    for figure, values in zip(figures, (down, up, replay), strict=True):
        shown = " ".join(f"{v:.3f}" for v in values)
        print(f"  {figure.name:36s} median {figure.value:6.3f} s   (target {figure.target} s)   rounds: {shown}")
    return figures


if __name__ == "__main__":
    main()
