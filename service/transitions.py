"""Logging a state once when it changes, and once a minute while a failure lasts (not every poll).

Used by the pool health checks and the job worker, so an outage writes a line when it starts,
one a minute while it lasts and one when it ends, however often anything polls.
"""

from __future__ import annotations

import logging
import time

# A pool that stays down is logged again this often (seconds); changes are logged at once.
REPEAT_SECONDS = 60.0


class TransitionLog:
    """Logs a state once when it changes and again once a minute while a failure persists."""

    def __init__(self, logger: logging.Logger, repeat: float = REPEAT_SECONDS) -> None:
        self.logger = logger
        self.repeat = repeat
        self._last: dict[str, tuple[bool, str | None, float]] = {}
        self.quiet = False  # set while shutting down: failures caused by closing pools are expected

    def record(self, key: str, ok: bool, reason: str | None, *, down: str, up: str | None, **extra: object) -> None:
        """Log ``down`` (a failure, with ``reason``) or ``up`` (recovery) when worth it."""
        if self.quiet:
            return
        previous = self._last.get(key)
        now = time.monotonic()
        if previous is not None and previous[:2] == (ok, reason):
            if ok or now - previous[2] < self.repeat:
                return
        self._last[key] = (ok, reason, now)
        if ok:
            if previous is not None and up is not None:
                self.logger.info(up, extra=extra)
        else:
            self.logger.warning(down, extra=extra)
