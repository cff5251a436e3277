from fasterdb_admin.exitcodes import Exit, worst


def test_worst_orders_critical_over_unknown_over_warning() -> None:
    assert worst([]) == Exit.OK
    assert worst([Exit.OK, Exit.WARNING]) == Exit.WARNING
    assert worst([Exit.WARNING, Exit.UNKNOWN]) == Exit.UNKNOWN
    assert worst([Exit.UNKNOWN, Exit.CRITICAL, Exit.OK]) == Exit.CRITICAL
