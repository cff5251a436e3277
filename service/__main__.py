"""``python -m fasterdb_sidecar`` runs the sidecar."""

from .main import main

main()
