"""The database layer: the only place that imports asyncpg and holds SQL."""
