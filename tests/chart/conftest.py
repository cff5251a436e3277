"""Chart fixtures: Helm's own engine through the helm-python-sdk wheel (no helm binary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "fasterdb-sidecar"
EXAMPLE_CHART = ROOT / "deploy" / "examples" / "app-chart"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))


def scenario_values(name: str) -> dict[str, Any]:
    """The values of helm/fasterdb-sidecar/ci/<name>-values.yaml."""
    data: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text()) or {}
    return data


def render(
    values: dict[str, Any],
    name: str = "my-db-sidecar",
    namespace: str = "apps",
    chart_dir: Path = CHART,
    *,
    api_versions: list[str] | None = None,
    kube_version: str | None = None,
) -> list[dict[str, Any]]:
    """Render a chart with Helm's engine and return every Kubernetes object (NOTES.txt excluded).

    Helm's SDK renders for the Kubernetes version it reports itself (1.36); the chart's
    ``kubeVersion`` value stands in for another cluster's version. ``api_versions`` and
    ``kube_version`` fill ``.Capabilities`` as ``helm template --api-versions --kube-version``
    would (the SDK's render takes them, its Python wrapper does not pass them on).
    """
    import json

    import helm_python as helm
    from helm_python import _native

    chart = helm.Chart.load(str(chart_dir))
    if api_versions is None and kube_version is None:
        manifests = chart.render(values, name=name, namespace=namespace, is_install=True)
    else:
        options: dict[str, Any] = {"name": name, "namespace": namespace, "is_install": True}
        if api_versions is not None:
            options["api_versions"] = api_versions
        if kube_version is not None:
            options["kube_version"] = kube_version
        raw = chart._raw()
        manifests = json.loads(_native.call_string("helm_render", raw, json.dumps(values), json.dumps(options)))
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


@pytest.fixture(scope="session")
def example_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/examples/app-chart with its dependency built, as `helm dependency build` does.

    Copied with the sidecar chart in the same relative place, so its ``file://`` repository
    resolves unchanged, and the source tree is never written to.
    """
    import shutil

    import helm_python as helm

    root = tmp_path_factory.mktemp("charts")
    shutil.copytree(CHART, root / "helm" / "fasterdb-sidecar")
    example = root / "deploy" / "examples" / "app-chart"
    shutil.copytree(EXAMPLE_CHART, example, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    helm.dependency_build(str(example), skip_refresh=True)
    return example
