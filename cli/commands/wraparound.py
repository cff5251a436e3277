"""``fasterdb-admin wraparound``: how close each database is to transaction-ID wraparound (/db/wraparound)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import WraparoundBody

from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata, status_line
from ..options import Target, sidecar_options
from ..output import CheckOutput, emit, make_table, state_style
from ..thresholds import ordered

SERVICE = "WRAPAROUND"
DEFAULT_WARN, DEFAULT_CRIT = 0.5, 0.75  # of the limit; autovacuum's own default forces freezing at ~0.093


@dataclass(frozen=True)
class WraparoundCheck:
    """The sidecar's answer, each database's verdict (on the larger of its two ratios), the overall one."""

    body: WraparoundBody
    warn: Range
    crit: Range
    verdicts: list[Exit]
    code: Exit


def fetch(client: SidecarClient, warn: Range, crit: Range, pool: str | None) -> tuple[Exit, WraparoundCheck]:
    """Ask /db/wraparound and judge every database by max(xid_ratio, mxid_ratio)."""
    reply = client.get("/db/wraparound", pool=pool)
    if reply.status != 200:
        raise CliError(f"/db/wraparound: {reply.error_message}", Exit.CRITICAL if reply.status == 503 else Exit.UNKNOWN)
    body = reply.decode(WraparoundBody)
    verdicts = [judge(max(d.xid_ratio, d.mxid_ratio), warn, crit) for d in body.databases]
    code = worst(verdicts)
    return code, WraparoundCheck(body, warn, crit, verdicts, code)


def nagios_line(check: WraparoundCheck) -> str:
    """``WRAPAROUND <STATE> - the oldest database | perfdata`` (both ratios per database)."""
    body = check.body
    oldest = max(body.databases, key=lambda d: max(d.xid_ratio, d.mxid_ratio), default=None)
    text = (
        f"{oldest.name} at {max(oldest.xid_ratio, oldest.mxid_ratio):.1%} of the wraparound limit "
        f"(xid age {oldest.xid_age:,}, mxid age {oldest.mxid_age:,})"
        if oldest
        else "no databases"
    )
    perf = []
    for d in body.databases:
        perf.append(perfdata(f"{d.name}_xid_ratio", round(d.xid_ratio, 6), "", check.warn, check.crit, 0, 1))
        perf.append(perfdata(f"{d.name}_mxid_ratio", round(d.mxid_ratio, 6), "", check.warn, check.crit, 0, 1))
    return status_line(SERVICE, check.code, text, perf)


def table(check: WraparoundCheck) -> Group:
    """One row per database."""
    rows = [
        [d.name, f"{d.xid_age:,}", f"{d.xid_ratio:.2%}", f"{d.mxid_age:,}", f"{d.mxid_ratio:.2%}", _v(code)]
        for d, code in zip(check.body.databases, check.verdicts, strict=True)
    ]
    freeze = check.body.autovacuum_freeze_max_age
    return Group(
        Text(f"wraparound on {check.body.pool}: {check.code.name}", style=state_style(check.code.name)),
        make_table(None, ["database", "xid age", "of limit", "mxid age", "of limit", "check"], rows),
        Text(
            f"limit 2^31; autovacuum forces freezing at xid age {freeze:,} ({freeze / 2**31:.1%}); "
            f"warning above {check.warn.end:g}, critical above {check.crit.end:g} of the limit",
            style="dim",
        ),
    )


def _v(code: Exit) -> Text:
    return Text(code.name, style=state_style(code.name))


def as_json(check: object) -> object:
    """The sidecar's body plus each database's verdict."""
    if not isinstance(check, WraparoundCheck):
        return check
    document: dict[str, Any] = msgspec.to_builtins(check.body)
    for row, code in zip(document["databases"], check.verdicts, strict=True):
        row["check"] = code.name
    document["check"] = check.code.name
    document["warn"], document["crit"] = check.warn.text, check.crit.text
    return document


def _ratio(value: float, option: str) -> float:
    if not 0 < value <= 1:
        raise typer.BadParameter("must be a fraction of the wraparound limit, above 0 and at most 1", param_hint=option)
    return value


@sidecar_options(output=CheckOutput)
def wraparound(
    target: Target,
    warn: Annotated[
        float | None, typer.Option("--warn", metavar="RATIO", help="WARNING above this fraction (default 0.5).")
    ] = None,
    crit: Annotated[
        float | None, typer.Option("--crit", metavar="RATIO", help="CRITICAL above this fraction (default 0.75).")
    ] = None,
    pool: Annotated[
        str | None, typer.Option("--pool", metavar="NAME", help="Ask this pool's server (default: the primary).")
    ] = None,
) -> Exit:
    """Transaction-ID and multixact-ID age of every database as a fraction of the wraparound limit.

    \b
    Example:
      fasterdb-admin wraparound --warn 0.4 --crit 0.6 -o nagios
    """
    given_warn = None if warn is None else _ratio(warn, "--warn")
    crit_value = DEFAULT_CRIT if crit is None else _ratio(crit, "--crit")
    # A default warning never exceeds a critical threshold that was given.
    warn_value = min(DEFAULT_WARN, crit_value) if given_warn is None else given_warn
    ordered(warn_value, crit_value, "--warn", "--crit")
    client = target.client()
    try:
        code, check = fetch(client, Range.above(warn_value), Range.above(crit_value), pool)
    finally:
        client.close()
    emit(check, target.output, table, nagios_line, as_json)
    return code
