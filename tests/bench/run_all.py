"""``make bench``: every benchmark, one after the other, then one table of every figure.

Each benchmark prints its own figures measured side by side in one run; the table at the end
lists them all with their targets and, where issue 24 measured it, Patroni's figure (Patroni
3.0.2's REST API on the same two PostgreSQL servers, wrk at 16 and 64 connections, medians of 3:
taken once by hand, see the README; Patroni is not run here).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback

from tests.bench.common import Figure

BENCHMARKS = [
    "tests.bench.bench_health",
    "tests.bench.bench_recovery",
    "tests.bench.bench_replicas",
    "tests.bench.bench_pools",
    "tests.bench.bench_kit",
    "tests.bench.bench_transfers",
    "tests.bench.bench_catalog",
]


def _table(figures: list[Figure]) -> None:
    print("== summary ==")
    print(f"  {'figure':48s} {'measured':>12s}  {'target':10s} {'met':4s} Patroni (issue 24)")
    for f in figures:
        value = f"{f.value:.3f} {f.unit}" if f.unit in ("s",) else f"{f.value:.2f} {f.unit}".rstrip()
        met = "-" if f.met is None else "yes" if f.met else "NO"
        print(f"  {f.name:48s} {value:>12s}  {f.target:10s} {met:4s} {f.patroni}")


def main() -> None:
    """Run the benchmarks named on the command line (``bench_health``, ...), or all of them."""
    names = [f"tests.bench.{n}" for n in sys.argv[1:]] or BENCHMARKS
    figures: list[Figure] = []
    failed = []
    mask = os.sched_getaffinity(0)
    started_all = time.monotonic()
    for name in names:
        started = time.monotonic()
        try:
            figures.extend(importlib.import_module(name).main() or [])
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        finally:
            os.sched_setaffinity(0, mask)  # some pin this process to one core; the next must not inherit it
        print(f"  ({name} took {time.monotonic() - started:.0f}s)\n")
    _table(figures)
    print(f"  (all benchmarks took {time.monotonic() - started_all:.0f}s; load average {os.getloadavg()[0]:.1f})")
    if failed:
        raise SystemExit(f"benchmarks that failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
