"""The chart as a user gets it: every value documented and in the schema, the README's values table
generated from values.yaml, and a package without the tests' scenarios or editor leftovers."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART
from tests.chart.values_table import documented, leaves, readme_with_table


def test_every_value_has_a_comment_and_a_schema_entry() -> None:
    text = (CHART / "values.yaml").read_text()
    keys = [row.key for row in documented(text)]
    undocumented = [
        leaf for leaf in leaves(yaml.safe_load(text)) if not any(leaf == k or leaf.startswith(k + ".") for k in keys)
    ]
    assert undocumented == []
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    for key in keys:
        node = schema
        for part in key.split("."):
            assert part in node.get("properties", {}), f"{key}: not in values.schema.json"
            node = node["properties"][part]
        assert node.get("description"), key


def test_the_readme_values_table_is_generated_from_values_yaml() -> None:
    readme = (CHART / "README.md").read_text()
    assert readme == readme_with_table(readme, (CHART / "values.yaml").read_text()), (
        "the values table is out of date: run python -m tests.chart.values_table"
    )
    assert '| `podDisruptionBudget.unhealthyPodEvictionPolicy` | `"AlwaysAllow"` |' in readme


def test_the_table_follows_a_changed_comment_and_default() -> None:
    readme = (CHART / "README.md").read_text()
    values = (CHART / "values.yaml").read_text().replace("  maxUnavailable: 1\n", "  maxUnavailable: 2\n")
    changed = readme_with_table(readme, values.replace("# -- Number of standalone pods.", "# -- Pods."))
    assert "| `podDisruptionBudget.maxUnavailable` | `2` |" in changed and "| `replicaCount` | `1` | Pods. |" in changed
    assert changed != readme


def test_the_package_holds_the_chart_and_nothing_else(tmp_path: Path) -> None:
    import helm_python as helm

    chart = tmp_path / "fasterdb-sidecar"
    shutil.copytree(CHART, chart)
    for junk in ("templates/service.yaml.orig", "values.yaml~", ".DS_Store", ".vscode/settings.json", "x.swp"):
        (chart / junk).parent.mkdir(parents=True, exist_ok=True)
        (chart / junk).write_text("junk")
    archive = helm.package(str(chart), destination=str(tmp_path / "dist"))
    names = {name.split("/", 1)[1] for name in tarfile.open(archive).getnames()}
    assert {"Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/_sidecar.tpl"} <= names
    assert "dashboards/fasterdb-sidecar.json" in names and "alerts/FasterdbSidecarDown.yaml" in names
    unexpected = {n for n in names if not n.startswith(("templates/", "alerts/", "runbooks/", "dashboards/"))}
    assert unexpected == {"Chart.yaml", "values.yaml", "values.schema.json", "README.md"}, unexpected
    assert not any(n.startswith("templates/") and not n.endswith((".yaml", ".tpl", ".txt")) for n in names)
