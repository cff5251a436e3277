"""``python -m service`` runs the sidecar."""

from service.main import main

main()
