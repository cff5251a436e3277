"""Exit codes, Nagios convention, for every command."""

from enum import IntEnum


class Exit(IntEnum):
    """0 OK, 1 WARNING, 2 CRITICAL or refused, 3 UNKNOWN (unreachable, bad answer, usage error)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


# Severity for aggregation (Icinga's order): a definite CRITICAL outranks an UNKNOWN.
_SEVERITY = {Exit.OK: 0, Exit.WARNING: 1, Exit.UNKNOWN: 2, Exit.CRITICAL: 3}


def worst(codes: list[Exit]) -> Exit:
    """The most severe of several exit codes: CRITICAL > UNKNOWN > WARNING > OK."""
    return max(codes, default=Exit.OK, key=_SEVERITY.__getitem__)
