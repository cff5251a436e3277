"""``fasterdb-admin wraparound``: how close each database is to transaction-ID wraparound (/db/wraparound)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import WraparoundBody

from ..check import Verdict, run_check
from ..client import SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata
from ..options import target
from ..output import make_table, percent, styled
from ..thresholds import in_force

SERVICE = "WRAPAROUND"
DEFAULTS = (0.5, 0.75)  # of the limit; autovacuum's own default forces freezing at ~0.093


@dataclass(frozen=True)
class WraparoundCheck(Verdict):
    """The sidecar's answer, each database's verdict (on the larger of its two ratios), the overall one."""

    body: WraparoundBody
    warn: Range
    crit: Range
    verdicts: list[Exit]
    code: Exit

    def table(self) -> Group:
        """One row per database."""
        rows = [
            [
                d.name,
                f"{d.xid_age:,}",
                f"{d.xid_ratio:.2%}",
                f"{d.mxid_age:,}",
                f"{d.mxid_ratio:.2%}",
                styled(code.name),
            ]
            for d, code in zip(self.body.databases, self.verdicts, strict=True)
        ]
        freeze = self.body.autovacuum_freeze_max_age
        return Group(
            Text(f"wraparound on {self.body.pool}: ") + styled(self.code.name),
            make_table(None, ["database", "xid age", "of limit", "mxid age", "of limit", "check"], rows),
            Text(
                f"limit 2^31; autovacuum forces freezing at xid age {freeze:,} ({freeze / 2**31:.1%}); "
                f"warning {self.warn.describe(percent)}, critical {self.crit.describe(percent)} of the limit",
                style="dim",
            ),
        )

    def document(self) -> Any:
        """The sidecar's body plus each database's verdict."""
        document: dict[str, Any] = msgspec.to_builtins(self.body)
        for row, code in zip(document["databases"], self.verdicts, strict=True):
            row["check"] = code.name
        document["check"] = self.code.name
        document["warn"], document["crit"] = self.warn.text, self.crit.text
        return document

    def summary(self) -> str:
        """The database closest to the limit."""
        oldest = max(self.body.databases, key=lambda d: max(d.xid_ratio, d.mxid_ratio), default=None)
        if oldest is None:
            return "no databases"
        return (
            f"{oldest.name} at {max(oldest.xid_ratio, oldest.mxid_ratio):.1%} of the wraparound limit "
            f"(xid age {oldest.xid_age:,}, mxid age {oldest.mxid_age:,})"
        )

    def perfdata(self, prefix: str = "") -> list[str]:
        """Both ratios per database."""
        perf = []
        for d in self.body.databases:
            for kind, ratio in (("xid", d.xid_ratio), ("mxid", d.mxid_ratio)):
                perf.append(perfdata(f"{prefix}{d.name}_{kind}_ratio", round(ratio, 6), "", self.warn, self.crit, 0, 1))
        return perf


def fetch(client: SidecarClient, warn: Range, crit: Range, pool: str | None) -> WraparoundCheck:
    """Ask /db/wraparound and judge every database by max(xid_ratio, mxid_ratio)."""
    reply = client.get("/db/wraparound", pool=pool)
    if reply.status != 200:
        raise reply.failure("/db/wraparound")
    return verdict(reply.decode(WraparoundBody), warn, crit)


def verdict(body: WraparoundBody, warn: Range, crit: Range) -> WraparoundCheck:
    """Every database judged by the larger of its two ratios; the worst is the verdict."""
    verdicts = [judge(max(d.xid_ratio, d.mxid_ratio), warn, crit) for d in body.databases]
    return WraparoundCheck(body, warn, crit, verdicts, worst(verdicts))


def _ratio(value: float, option: str) -> float:
    if not 0 < value <= 1:
        raise typer.BadParameter("must be a fraction of the wraparound limit, above 0 and at most 1", param_hint=option)
    return value


def wraparound(
    ctx: typer.Context,
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
    given = (None if warn is None else _ratio(warn, "--warn"), None if crit is None else _ratio(crit, "--crit"))
    warn_value, crit_value = in_force(*given, DEFAULTS, ("--warn", "--crit"))
    return run_check(
        target(ctx), SERVICE, lambda client: fetch(client, Range.above(warn_value), Range.above(crit_value), pool)
    )
