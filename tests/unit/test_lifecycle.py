"""The lifecycle object: states move one way, readiness reads them, in-flight requests are counted."""

from __future__ import annotations

import asyncio

from fasterdb_sidecar.lifecycle import Lifecycle


def test_states_move_one_way_and_readiness_reads_them() -> None:
    life = Lifecycle(clock=lambda: 42.0)
    assert (life.state, life.readiness_reason()) == ("starting", "starting")
    life.serving()
    assert (life.state, life.readiness_reason(), life.draining) == ("serving", None, False)
    assert life.drain() is True and life.draining_since == 42.0
    assert life.drain() is False  # a second SIGTERM is not a new drain
    life.serving()  # never back
    assert (life.state, life.readiness_reason()) == ("draining", "draining")
    life.stopped()
    assert (life.state, life.readiness_reason(), life.draining) == ("stopped", "draining", True)


def test_wait_idle_is_bounded_and_sees_the_last_request_finish() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        life = Lifecycle()
        empty = await life.wait_idle(0.01)
        task = asyncio.current_task()
        assert task is not None
        life.request_started(task)
        busy = await life.wait_idle(0.01)
        asyncio.get_running_loop().call_later(0.01, life.request_finished, task)
        done = await life.wait_idle(1.0)
        return empty, busy, done

    assert asyncio.run(scenario()) == (True, False, True)
