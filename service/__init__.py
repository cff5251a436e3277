"""fasterdb-ops sidecar: health, replica lag, pool statistics and transactional jobs for PostgreSQL."""

from .versions import installed_version

# "unknown": a checkout that was never installed.
__version__ = installed_version("fasterdb-ops") or "0.0.0+unknown"
