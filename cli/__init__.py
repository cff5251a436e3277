"""fasterdb-admin: the admin CLI of the fasterdb sidecar."""
