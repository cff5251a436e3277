"""Chart fixtures: Helm's own engine through the helm-python-sdk wheel (no helm binary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "fasterdb-sidecar"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))


def scenario_values(name: str) -> dict[str, Any]:
    """The values of helm/fasterdb-sidecar/ci/<name>-values.yaml."""
    data: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text()) or {}
    return data


def render(values: dict[str, Any], name: str = "my-db-sidecar", namespace: str = "apps") -> list[dict[str, Any]]:
    """Render the chart and return every Kubernetes object (NOTES.txt excluded)."""
    import helm_python as helm

    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name=name, namespace=namespace, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str, *, name_suffix: str = "") -> dict[str, Any]:
    """The one object of ``kind`` (whose name ends with ``name_suffix``)."""
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, (kind, [o["metadata"]["name"] for o in matches])
    return matches[0]


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    """Each values scenario in ci/."""
    return str(request.param)
