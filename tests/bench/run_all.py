"""``make bench``: every benchmark, one after the other; each prints ratios measured side by side."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = [
    "tests.bench.bench_health",
    "tests.bench.bench_replicas",
    "tests.bench.bench_pools",
    "tests.bench.bench_transfers",
    "tests.bench.bench_catalog",
]


def main() -> None:
    """Run the benchmarks named on the command line, or all of them."""
    names = [f"tests.bench.{n}" for n in sys.argv[1:]] or BENCHMARKS
    for name in names:
        started = time.monotonic()
        importlib.import_module(name).main()
        print(f"  ({name} took {time.monotonic() - started:.0f}s)\n")


if __name__ == "__main__":
    main()
