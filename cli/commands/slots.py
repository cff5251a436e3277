"""``fasterdb-admin slots``: replication slots judged — retained WAL, inactive slots, lost slots (/db/slots)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from fasterdb.contract import SlotBody, SlotsBody
from fasterdb.sizes import format_size

from ..client import CliError, SidecarClient
from ..exitcodes import Exit, worst
from ..nagios import Range, judge, perfdata, status_line
from ..options import Target, sidecar_options
from ..output import CheckOutput, emit, make_table, state_style
from ..thresholds import human_seconds, ordered, size

SERVICE = "SLOTS"
DEFAULT_WARN_RETAINED, DEFAULT_CRIT_RETAINED = 1024**3, 10 * 1024**3  # 1 GB, 10 GB


@dataclass(frozen=True)
class SlotsCheck:
    """The sidecar's answer, each slot's verdict and reason, the overall verdict."""

    body: SlotsBody
    warn: Range
    crit: Range
    verdicts: list[tuple[Exit, str]]
    code: Exit


def judge_slot(slot: SlotBody, warn: Range, crit: Range) -> tuple[Exit, str]:
    """By retained WAL; an inactive slot is at least WARNING; a lost one CRITICAL."""
    if slot.wal_status == "lost":
        return Exit.CRITICAL, "lost: the WAL it needs is gone; its consumer must be rebuilt"
    code = judge(slot.retained_bytes, warn, crit)
    reasons = []
    if code is not Exit.OK:
        reasons.append(f"retains {format_size(slot.retained_bytes)}")
    if slot.wal_status == "unreserved":
        code = worst([code, Exit.WARNING])
        reasons.append("unreserved: about to lose WAL it needs")
    if not slot.active:
        code = worst([code, Exit.WARNING])
        since = f" for {human_seconds(slot.inactive_seconds)}" if slot.inactive_seconds is not None else ""
        reasons.append(f"inactive{since}: nothing consumes it, so WAL piles up")
    return code, "; ".join(reasons)


def fetch(client: SidecarClient, warn: Range, crit: Range, pool: str | None) -> tuple[Exit, SlotsCheck]:
    """Ask /db/slots and judge every slot (no slot at all is OK)."""
    reply = client.get("/db/slots", pool=pool)
    if reply.status != 200:
        raise CliError(f"/db/slots: {reply.error_message}", Exit.CRITICAL if reply.status == 503 else Exit.UNKNOWN)
    body = reply.decode(SlotsBody)
    verdicts = [judge_slot(s, warn, crit) for s in body.slots]
    code = worst([v for v, _ in verdicts])
    return code, SlotsCheck(body, warn, crit, verdicts, code)


def summary(check: SlotsCheck) -> str:
    """One line: every slot with its state and retained WAL."""
    if not check.body.slots:
        return "no replication slots"
    parts = []
    for slot, (_, reason) in zip(check.body.slots, check.verdicts, strict=True):
        state = "active" if slot.active else "inactive"
        why = f" ({reason})" if reason else ""
        parts.append(f"{slot.name} {state} retains {format_size(slot.retained_bytes)}{why}")
    return "; ".join(parts)


def nagios_line(check: SlotsCheck) -> str:
    """``SLOTS <STATE> - summary | perfdata`` (retained bytes per slot)."""
    perf = [perfdata(f"{s.name}_retained", s.retained_bytes, "B", check.warn, check.crit) for s in check.body.slots]
    return status_line(SERVICE, check.code, summary(check), perf)


def table(check: SlotsCheck) -> Group:
    """One row per slot."""
    rows = []
    for slot, (code, reason) in zip(check.body.slots, check.verdicts, strict=True):
        rows.append(
            [
                slot.name,
                slot.type,
                Text("yes" if slot.active else "no", style=state_style("yes" if slot.active else "no")),
                slot.wal_status,
                format_size(slot.retained_bytes),
                format_size(slot.safe_wal_size) if slot.safe_wal_size is not None else "unlimited",
                human_seconds(slot.inactive_seconds),
                slot.xmin_age,
                Text(code.name, style=state_style(code.name)),
                reason,
            ]
        )
    columns = ["slot", "type", "active", "wal_status", "retained", "safe WAL", "inactive", "xmin age", "check", "why"]
    return Group(
        Text(f"slots on {check.body.pool}: {check.code.name}", style=state_style(check.code.name)),
        make_table(None, columns, rows) if rows else Text("no replication slots"),
        Text(
            f"retained: warning above {format_size(int(check.warn.end))}, critical above "
            f"{format_size(int(check.crit.end))}; inactive slots are at least WARNING",
            style="dim",
        ),
    )


def as_json(check: object) -> object:
    """The sidecar's body plus each slot's verdict and reason."""
    if not isinstance(check, SlotsCheck):
        return check
    document: dict[str, Any] = msgspec.to_builtins(check.body)
    for row, (code, reason) in zip(document["slots"], check.verdicts, strict=True):
        row["check"], row["why"] = code.name, reason
    document["check"] = check.code.name
    document["warn_retained"], document["crit_retained"] = check.warn.text, check.crit.text
    return document


@sidecar_options(output=CheckOutput)
def slots(
    target: Target,
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
    warn_b = size(warn_retained, "--warn-retained")
    crit_b = size(crit_retained, "--crit-retained")
    ordered(warn_b, crit_b, "--warn-retained", "--crit-retained")
    crit = Range.above(DEFAULT_CRIT_RETAINED if crit_b is None else crit_b)
    # A default warning never exceeds a critical threshold that was given.
    warn = Range.above(min(DEFAULT_WARN_RETAINED, int(crit.end)) if warn_b is None else warn_b)
    ordered(warn.end, crit.end, "--warn-retained", "--crit-retained")
    client = target.client()
    try:
        code, check = fetch(client, warn, crit, pool)
    finally:
        client.close()
    emit(check, target.output, table, nagios_line, as_json)
    return code
