"""fasterdb-ops sidecar: health, replica lag, pool statistics and transactional jobs for PostgreSQL."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fasterdb-ops")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0.0.0+unknown"
