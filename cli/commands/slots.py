"""``fasterdb-admin slots``: replication slots judged — retained WAL, inactive slots, lost slots (/db/slots)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import SlotBody, SlotsBody

from ..check import Verdict, run_check
from ..client import SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata
from ..options import target
from ..output import human_size, make_table, styled
from ..thresholds import human_seconds, in_force, size

SERVICE = "SLOTS"
DEFAULT_RETAINED = (1024**3, 10 * 1024**3)  # warning, critical: 1 GB, 10 GB


@dataclass(frozen=True)
class SlotsCheck(Verdict):
    """The sidecar's answer, each slot's verdict and reason, the overall verdict."""

    body: SlotsBody
    warn: Range
    crit: Range
    verdicts: list[tuple[Exit, str]]
    code: Exit

    def table(self) -> Group:
        """One row per slot."""
        rows = []
        for slot, (code, reason) in zip(self.body.slots, self.verdicts, strict=True):
            rows.append(
                [
                    slot.name,
                    slot.type,
                    styled("yes" if slot.active else "no"),
                    slot.wal_status,
                    human_size(slot.retained_bytes),
                    human_size(slot.safe_wal_size) if slot.safe_wal_size is not None else "unlimited",
                    human_seconds(slot.inactive_seconds),
                    slot.xmin_age,
                    styled(code.name),
                    reason,
                ]
            )
        columns = [
            "slot",
            "type",
            "active",
            "wal_status",
            "retained",
            "safe WAL",
            "inactive",
            "xmin age",
            "check",
            "why",
        ]
        return Group(
            Text(f"slots on {self.body.pool}: ") + styled(self.code.name),
            make_table(None, columns, rows) if rows else Text("no replication slots"),
            Text(
                f"retained: warning {self.warn.describe(human_size)}, critical {self.crit.describe(human_size)}; "
                "inactive slots are at least WARNING",
                style="dim",
            ),
        )

    def document(self) -> Any:
        """The sidecar's body plus each slot's verdict and reason."""
        document: dict[str, Any] = msgspec.to_builtins(self.body)
        for row, (code, reason) in zip(document["slots"], self.verdicts, strict=True):
            row["check"], row["why"] = code.name, reason
        document["check"] = self.code.name
        document["warn_retained"], document["crit_retained"] = self.warn.text, self.crit.text
        return document

    def summary(self) -> str:
        """Every slot with its state and retained WAL."""
        if not self.body.slots:
            return "no replication slots"
        parts = []
        for slot, (_, reason) in zip(self.body.slots, self.verdicts, strict=True):
            state = "active" if slot.active else "inactive"
            why = f" ({reason})" if reason else ""
            parts.append(f"{slot.name} {state} retains {human_size(slot.retained_bytes)}{why}")
        return "; ".join(parts)

    def perfdata(self, prefix: str = "") -> list[str]:
        """Retained bytes per slot."""
        return [
            perfdata(f"{prefix}{s.name}_retained", s.retained_bytes, "B", self.warn, self.crit) for s in self.body.slots
        ]


def judge_slot(slot: SlotBody, warn: Range, crit: Range) -> tuple[Exit, str]:
    """By retained WAL; an inactive slot is at least WARNING; a lost one CRITICAL."""
    if slot.wal_status == "lost":
        return Exit.CRITICAL, "lost: the WAL it needs is gone; its consumer must be rebuilt"
    code = judge(slot.retained_bytes, warn, crit)
    reasons = []
    if code is not Exit.OK:
        reasons.append(f"retains {human_size(slot.retained_bytes)}")
    if slot.wal_status == "unreserved":
        code = worst([code, Exit.WARNING])
        reasons.append("unreserved: about to lose WAL it needs")
    if not slot.active:
        code = worst([code, Exit.WARNING])
        since = f" for {human_seconds(slot.inactive_seconds)}" if slot.inactive_seconds is not None else ""
        reasons.append(f"inactive{since}: nothing consumes it, so WAL piles up")
    return code, "; ".join(reasons)


def fetch(client: SidecarClient, warn: Range, crit: Range, pool: str | None) -> SlotsCheck:
    """Ask /db/slots and judge every slot (no slot at all is OK)."""
    reply = client.get("/db/slots", pool=pool)
    if reply.status != 200:
        raise reply.failure("/db/slots")
    return verdict(reply.decode(SlotsBody), warn, crit)


def verdict(body: SlotsBody, warn: Range, crit: Range) -> SlotsCheck:
    """Every slot judged; the worst is the verdict (no slot at all is OK)."""
    verdicts = [judge_slot(s, warn, crit) for s in body.slots]
    return SlotsCheck(body, warn, crit, verdicts, worst([v for v, _ in verdicts]))


def slots(
    ctx: typer.Context,
    warn_retained: Annotated[
        str | None, typer.Option("--warn-retained", metavar="SIZE", help="WARNING above (default 1GB).")
    ] = None,
    crit_retained: Annotated[
        str | None, typer.Option("--crit-retained", metavar="SIZE", help="CRITICAL above (default 10GB).")
    ] = None,
    pool: Annotated[
        str | None, typer.Option("--pool", metavar="NAME", help="Ask this pool's server (default: the primary).")
    ] = None,
) -> Exit:
    """Replication slots: WAL each one retains; inactive slots are at least WARNING, lost ones CRITICAL.

    SIZE is bytes or a number with kB, MB, GB, TB (1024-based).

    \b
    Example:
      fasterdb-admin slots --warn-retained 512MB --crit-retained 5GB -o nagios
    """
    options = ("--warn-retained", "--crit-retained")
    warn, crit = in_force(size(warn_retained, options[0]), size(crit_retained, options[1]), DEFAULT_RETAINED, options)
    return run_check(target(ctx), SERVICE, lambda client: fetch(client, Range.above(warn), Range.above(crit), pool))
