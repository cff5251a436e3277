"""The event loop's lag: a callback that blocks the loop shows up as the delay of the sleeping task."""

from __future__ import annotations

import asyncio
import time

from fasterdb_sidecar.metrics.loop_lag import LoopLag


def test_a_blocked_loop_is_measured() -> None:
    async def scenario() -> tuple[float, float]:
        lag = LoopLag(interval=0.01)
        lag.start()
        try:
            while not lag._recent:  # the first measurement, on an idle loop
                await asyncio.sleep(0.01)
            idle = lag.worst()
            time.sleep(0.3)  # the loop is blocked: this is the condition being measured, not a wait
            seen = len(lag._recent)
            while len(lag._recent) == seen:
                await asyncio.sleep(0.01)
            return idle, lag.worst()
        finally:
            await lag.stop()

    idle, blocked = asyncio.run(scenario())
    assert blocked >= 0.25  # at least most of the 0.3 s the loop could not run
    assert idle < blocked
