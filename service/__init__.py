"""fasterdb-ops sidecar: health, replica lag, pool statistics and transactional jobs for PostgreSQL."""

__version__ = "0.1.0"
