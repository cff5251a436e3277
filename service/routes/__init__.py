"""HTTP routers, one per resource, each named for the URL it serves."""
