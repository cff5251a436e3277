"""The chart README's values table, generated from values.yaml's ``# --`` comments (helm-docs' style).

    python -m tests.chart.values_table          # rewrite the table in helm/fasterdb-sidecar/README.md

tests/chart/test_values_table.py fails when the table and values.yaml have drifted apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "fasterdb-sidecar"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")


@dataclass(frozen=True)
class Row:
    """One documented value: its dotted key, its default and its comment."""

    key: str
    default: Any
    description: str


def documented(text: str) -> list[Row]:
    """Every key of values.yaml with a ``# --`` comment right above it, in file order."""
    values = yaml.safe_load(text)
    rows: list[Row] = []
    path: list[tuple[int, str]] = []
    comment: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped.removeprefix("# --").strip()]
            continue
        if stripped.startswith("#") and comment is not None:
            comment.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if match is None:
            comment = None
            continue
        indent = len(match["indent"])
        while path and path[-1][0] >= indent:
            path.pop()
        path.append((indent, match["key"]))
        if comment is not None:
            keys = [k for _, k in path]
            default: Any = values
            for k in keys:
                default = default[k]
            rows.append(Row(".".join(keys), default, " ".join(comment)))
        comment = None
    return rows


def leaves(values: Any, prefix: str = "") -> list[str]:
    """The dotted keys of every scalar, list or empty map in values."""
    if isinstance(values, dict) and values:
        return [leaf for k, v in values.items() for leaf in leaves(v, f"{prefix}.{k}" if prefix else k)]
    return [prefix]


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(rows: list[Row]) -> str:
    """The Markdown table of rows."""
    lines = ["| key | default | description |", "| --- | --- | --- |"]
    for row in rows:
        default = json.dumps(row.default, separators=(", ", ": "), ensure_ascii=False)
        lines.append(f"| `{row.key}` | `{cell(default)}` | {cell(row.description)} |")
    return "\n".join(lines)


def readme_with_table(readme: str, values_text: str) -> str:
    """The chart README with its table between the markers regenerated."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(documented(values_text))}\n{END}{tail}"


def main() -> None:
    """Rewrite the table in the chart README."""
    readme = CHART / "README.md"
    readme.write_text(readme_with_table(readme.read_text(), (CHART / "values.yaml").read_text()))


if __name__ == "__main__":
    main()
