"""checkov on every way the sidecar reaches a cluster: no failed check outside the documented skips."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART, ROOT, SCENARIOS, render, scenario_values
from tests.chart.test_chart import DSN, NEWEST
from tests.harness import run_cli

CHART_README = CHART / "README.md"


def documented_skips() -> list[str]:
    """The check IDs of the skip table in the chart's README: the only place they are listed."""
    section = CHART_README.read_text().split("## Security checks (checkov)", 1)[1]
    return re.findall(r"^\| (CKV2?_K8S_\d+) \|", section, flags=re.MULTILINE)


def checkov() -> str:
    found = ROOT / ".tools" / "checkov" / "bin" / "checkov"
    if found.exists():
        return str(found)
    which = shutil.which("checkov")
    assert which, "checkov is not installed: run deploy/scripts/bootstrap.sh (it installs .tools/checkov)"
    return which


def write(directory: Path, name: str, objects: list[dict[str, Any]]) -> None:
    (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(objects))


def test_checkov_passes_everything_but_the_documented_skips(tmp_path: Path, example_chart: Path) -> None:
    skips = documented_skips()
    assert skips == ["CKV_K8S_11", "CKV_K8S_15", "CKV_K8S_43", "CKV2_K8S_6"]  # short, and each justified
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    # Release names differ so that checkov's graph checks (which span files) cannot credit one
    # rendering's NetworkPolicy to another's pods.
    for scenario in SCENARIOS:
        values = {**scenario_values(scenario), "kubeVersion": NEWEST}
        write(manifests, scenario, render(values, name=f"ckv-{scenario}"))
    for mode in ("native", "container"):
        # The application container of the "full" scenario: probes, resources, hardened context.
        values = {**DSN, "app": scenario_values("full")["app"], "sidecar": {"mode": mode}}
        write(manifests, f"app-{mode}", render(values, name=f"ckv-app-{mode}"))
        example = {"fasterdb-sidecar": {"database": {"existingSecret": "db"}, "sidecar": {"mode": mode}}}
        write(manifests, f"example-{mode}", render(example, name=f"ckv-example-{mode}", chart_dir=example_chart))
    injected = run_cli("inject", "-f", str(ROOT / "deploy" / "examples" / "inject" / "deployment.yaml"))
    assert injected.returncode == 0, injected.stderr
    (manifests / "injected.yaml").write_text(injected.stdout)

    result = subprocess.run(
        [checkov(), "-d", str(manifests), "--framework", "kubernetes", "--skip-check", ",".join(skips)]
        + ["--output", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip(), result.stderr
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{check['check_id']} {check['resource']} ({Path(check['file_path']).name}): {check['check_name']}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 500  # the files were read and checked, not silently skipped
