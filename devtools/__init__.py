"""Development tools that never ship in the sidecar image: the throwaway local PostgreSQL cluster.

Imported lazily by ``fasterdb-sidecar --local-cluster`` and by the tests; the Dockerfile copies only
``service/`` and ``cli/``.
"""
