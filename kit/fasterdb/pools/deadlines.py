"""Acquire deadlines with one timer per pool instead of one per acquire.

``asyncio.timeout`` arms and cancels an event-loop timer on every call; on a saturated pool that
alone costs about a fifth of acquire + ``SELECT 1`` throughput (measured with tests/bench). Here
a waiting task registers its deadline in a dict, and a single timer, armed for the earliest
deadline, cancels the tasks past theirs when it fires and re-arms itself for the next one. In a
busy pool it fires about once per acquire timeout; while nobody waits, never.

Use::

    deadlines.enter(task, time.monotonic() + timeout)
    try:
        conn = await pool.acquire()
    except asyncio.CancelledError:
        if deadlines.expired(task):
            raise TimeoutError from None
        raise
    finally:
        deadlines.leave(task)
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
import time
from collections.abc import Callable

if sys.version_info < (3, 12):
    # Before 3.12 asyncio.current_task is a Python function around this dict, which the C tasks
    # keep (loop -> running task): one dict lookup instead of a call (a tenth of what the acquire
    # adds to acquire + SELECT 1 on a saturated pool, counted with callgrind).
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    _running_task = _current_tasks.get
else:  # implemented in C since 3.12; from 3.14 the dict above is not kept any more
    _running_task = asyncio.current_task


def _no_task() -> None:
    return None


class Deadlines:
    """Deadlines of waiting tasks, enforced by one timer armed for the earliest of them.

    ``waiting``, ``expired_tasks`` and ``armed_at`` are public so the acquire's hot path can
    register and unregister a task without method calls; ``enter``/``leave`` do the same for
    everyone else.
    """

    __slots__ = ("waiting", "expired_tasks", "armed_at", "_timer", "loop", "running_task")

    def __init__(self) -> None:
        # The loop the pool runs in, set when it opens (use_loop).
        self.loop: asyncio.AbstractEventLoop | None = None
        # The task running in that loop, found without asking for the running loop (CPython's
        # get_running_loop makes a getpid() system call); None: ask asyncio.current_task().
        self.running_task: Callable[[], asyncio.Task[object] | None] = _no_task
        self.waiting: dict[asyncio.Task[object], float] = {}  # task -> deadline (time.monotonic())
        self.expired_tasks: set[asyncio.Task[object]] = set()  # cancelled by the timer, not yet seen
        self.armed_at = math.inf  # when the timer fires (time.monotonic()); inf: not armed
        self._timer: asyncio.TimerHandle | None = None

    def use_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the waiting tasks run in (the pool's)."""
        self.loop = loop
        self.running_task = functools.partial(_running_task, loop)

    def enter(self, task: asyncio.Task[object], deadline: float) -> None:
        """Cancel ``task`` if it is still registered at ``deadline`` (time.monotonic())."""
        self.waiting[task] = deadline
        if deadline < self.armed_at:
            self.arm(deadline)

    def leave(self, task: asyncio.Task[object]) -> None:
        """Unregister ``task`` (always call this, in a ``finally``)."""
        self.waiting.pop(task, None)
        self.expired_tasks.discard(task)

    def arm(self, when: float) -> None:
        """(Re)arm the timer for ``when`` (time.monotonic())."""
        if self._timer is not None:
            self._timer.cancel()
        self.armed_at = when
        loop = self.loop or asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, when - time.monotonic()), self._fire)

    def expired(self, task: asyncio.Task[object]) -> bool:
        """Whether the CancelledError that ``task`` caught is our deadline (then it is consumed)."""
        if task in self.expired_tasks:
            self.expired_tasks.discard(task)
            return task.uncancel() == 0  # 0: nobody else cancelled the task as well
        return False

    def _fire(self) -> None:
        self._timer, self.armed_at = None, math.inf
        now, earliest = time.monotonic(), math.inf
        for task, deadline in list(self.waiting.items()):
            if deadline <= now:
                if task not in self.expired_tasks:
                    self.expired_tasks.add(task)
                    task.cancel()
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self.arm(earliest)
