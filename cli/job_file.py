"""The CSV file of ``jobs submit``: its transfers, and every error named by the file's line.

Errors the CLI finds itself (the file cannot be read as transfers: exit 3) and errors the sidecar
finds in the items it was sent (it refuses the job: exit 2) are both listed line by line, the first
``MAX_LISTED`` of them; the sidecar maps item ``i`` of the request, which is line ``lines[i]``.
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from fasterdb.contract import JOB_MAX_ITEMS, JobItemRequest

from .client import CliError
from .exitcodes import Exit

MAX_LISTED = 20  # bad lines listed in one error; the rest are counted
FORMAT = "from_account,to_account,amount[,idempotency_key]"
# The sidecar's words for bad items: "item 3: …; item 7: … (and 12 more)", or msgspec's "… - at `$.items[3].x`".
_ITEM = re.compile(r"item (\d+): (.*?)(?=; item \d+: | \(and \d+ more\)$|$)")
_MORE = re.compile(r" \(and (\d+) more\)$")
_PATH = re.compile(r"^(?:invalid request body: )?(.*) - at `\$\.items\[(\d+)\]\.?(\w*)`$")


def decode_csv(data: bytes, source: str) -> str:
    """UTF-8 text, with or without a byte-order mark (Excel's "CSV UTF-8"); anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CliError(f"{source} is UTF-16 text: save it as CSV UTF-8 (comma-separated)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CliError(f"{source}:{line}: not UTF-8 text (Latin-1 or Windows-1252?): save it as CSV UTF-8") from None


def bad_lines(source: str, problems: list[str], code: Exit, *, refused: bool = False, unnamed: int = 0) -> CliError:
    """One error for the bad lines of a file: a single one on one line, several listed under a summary.

    ``refused``: the sidecar found them (it refused the job); ``unnamed``: bad items it counted
    without naming them.
    """
    prefix = "job refused: " if refused else ""
    if len(problems) == 1 and not unnamed:
        return CliError(prefix + problems[0], code)
    listed = problems[:MAX_LISTED]
    tail = []
    if len(problems) > len(listed):
        tail.append(f"... and {len(problems) - len(listed)} more (the first {MAX_LISTED} are listed)")
    if unnamed:
        tail.append(f"... and {unnamed} more that the sidecar counted without naming them")
    summary = f"{prefix}{source}: {len(problems) + unnamed} bad lines; nothing was submitted"
    return CliError(summary, code, listed + tail)


def _item(row: list[str]) -> dict[str, Any]:
    """One CSV row as a job item; ValueError says what is wrong with it."""
    if len(row) not in (3, 4):
        raise ValueError(f"expected {FORMAT}")
    try:
        item: dict[str, Any] = {"from_account": int(row[0]), "to_account": int(row[1]), "amount": row[2].strip()}
    except ValueError:
        raise ValueError(f"account ids must be whole numbers, not {row[0]!r}, {row[1]!r}") from None
    if len(row) == 4 and row[3].strip():
        item["idempotency_key"] = row[3].strip()
    try:  # the contract's own field rules (ids, key length); the amount's value is the sidecar's to judge
        msgspec.json.decode(msgspec.json.encode(item), type=JobItemRequest)
    except msgspec.ValidationError as exc:
        text, _, path = str(exc).partition(" - at `$.")
        raise ValueError(f"{path.rstrip('`')}: {text}" if path else text) from None
    return item


@dataclass(frozen=True)
class JobFile:
    """The transfers of a CSV file and the line each came from (for errors the sidecar reports)."""

    items: list[dict[str, Any]]
    lines: list[int]
    source: str

    def where(self, index: int) -> str:
        """``FILE:LINE`` of item ``index``."""
        return f"{self.source}:{self.lines[index]}" if 0 <= index < len(self.lines) else self.source

    def explain(self, message: str) -> CliError | None:
        """The sidecar's refusal of some items, by the file's lines (CRITICAL); None when it names no item."""
        path = _PATH.match(message)
        if path:
            field = f" ({path.group(3)})" if path.group(3) else ""
            problem = f"{self.where(int(path.group(2)))}: {path.group(1)}{field}"
            return bad_lines(self.source, [problem], Exit.CRITICAL, refused=True)
        named = [f"{self.where(int(i))}: {text}" for i, text in _ITEM.findall(message)]
        if not named:
            return None
        more = _MORE.search(message)
        return bad_lines(self.source, named, Exit.CRITICAL, refused=True, unnamed=int(more.group(1)) if more else 0)


def read_job_file(path: Path) -> JobFile:
    """Items from CSV ``from_account,to_account,amount[,idempotency_key]`` (a header row is optional)."""
    source = "stdin" if str(path) == "-" else str(path)
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[str] = []
    for number, row in enumerate(csv.reader(decode_csv(data, source).splitlines()), start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if not items and not problems and row[0].strip().lower() in ("from_account", "from"):
            continue  # the header
        try:
            items.append(_item(row))
            lines.append(number)
        except ValueError as exc:
            problems.append(f"{source}:{number}: {exc}")
    if problems:
        raise bad_lines(source, problems, Exit.UNKNOWN)
    if not items:
        raise CliError(f"{source}: no transfers found")
    if len(items) > JOB_MAX_ITEMS:
        raise CliError(f"{source} has {len(items):,} transfers; a job takes at most {JOB_MAX_ITEMS:,}: split the file")
    return JobFile(items, lines, source)
