"""fasterdb: what a FasterAPI application imports to use PostgreSQL well beside the fasterdb sidecar.

``Database.from_env()`` reads the same settings as the sidecar; ``db.install(app)`` opens the pools at
startup and closes them at shutdown; ``db.write()``, ``db.read()``, ``db.transaction()`` and
``db.run()`` give connections that are always released, with deadlines, routed reads, read-your-
writes across pods and failover. See the README, "Using it from your application".

The names below are imported on first use: the sidecar's CLI imports ``fasterdb.contract`` without
paying for (or being affected by) FasterAPI, which installs uvloop's event-loop policy on import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from fasterdb.database import Database, ReadsRejected
    from fasterdb.errors import DatabaseUnavailable, OutcomeUnknown, ServiceError
    from fasterdb.settings import ConfigError, KitSettings
    from fasterdb.web import served_by

_LAZY = {
    "Database": "fasterdb.database",
    "ReadsRejected": "fasterdb.database",
    "DatabaseUnavailable": "fasterdb.errors",
    "OutcomeUnknown": "fasterdb.errors",
    "ServiceError": "fasterdb.errors",
    "ConfigError": "fasterdb.settings",
    "KitSettings": "fasterdb.settings",
    "served_by": "fasterdb.web",
}
__all__ = [
    "ConfigError",
    "Database",
    "DatabaseUnavailable",
    "KitSettings",
    "OutcomeUnknown",
    "ReadsRejected",
    "ServiceError",
    "served_by",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fasterdb' has no attribute {name!r}")
