"""Shared benchmark plumbing: the local cluster, a sidecar process, and wrk as the load generator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def ensure_wrk() -> str:
    """Path of wrk, installing Debian's package when it is missing (root only)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True, capture_output=True, timeout=600)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is required (apt-get install wrk)")
    return found


@dataclass
class WrkResult:
    """What one wrk run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def split_cpus(server_pid: int) -> list[str]:
    """Pin the server to CPU 0 and return a taskset prefix that keeps the load generator on the rest.

    On a 2-core machine this stops the two from fighting over one core, which otherwise makes
    back-to-back runs differ by 15 % or more.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or not shutil.which("taskset"):
        return []
    os.sched_setaffinity(server_pid, {cpus[0]})
    return ["taskset", "-c", ",".join(str(c) for c in cpus[1:])]


def wrk(
    url: str, seconds: float = 3.0, connections: int = 32, threads: int = 1, prefix: list[str] | None = None
) -> WrkResult:
    """Run wrk against a loopback URL (bounded in time) and parse its summary."""
    assert url.startswith(("http://127.", "http://localhost", "http://[::1]")), "loopback targets only"
    out = subprocess.run(
        [
            *(prefix or []),
            ensure_wrk(),
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{int(seconds)}s",
            "--latency",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p50 = re.search(r"50%\s+(\S+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return WrkResult(
        rps,
        _ms(p50.group(1)) if p50 else float("nan"),
        _ms(p99.group(1)) if p99 else float("nan"),
        requests,
        int(non.group(1)) if non else 0,
    )


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median(values: list[float]) -> float:
    """The median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def pin_postgres(cluster_datadir: Path, cpus: set[int]) -> None:
    """Pin a running PostgreSQL server (postmaster; backends started later inherit it) to ``cpus``."""
    pid = int((cluster_datadir / "postmaster.pid").read_text().splitlines()[0])
    os.sched_setaffinity(pid, cpus)


def two_cpus() -> tuple[set[int], set[int]] | None:
    """Two disjoint CPU sets (client, server) when the machine has at least two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


@dataclass
class Figure:
    """One figure of ``make bench``: what was measured, its target, and Patroni's from issue 24."""

    name: str
    value: float
    unit: str  # "s", "x", "MiB", ...
    target: str  # as printed, e.g. "<= 1.1"
    met: bool | None  # None: printed for information, no target
    patroni: str = ""  # the Patroni figure ("" when there is none to compare)
