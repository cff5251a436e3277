"""The status page's data: what a person watches during an incident, from what open endpoints show."""
