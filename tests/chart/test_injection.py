"""The sidecar in the user's own pods: the example application chart and ``fasterdb-admin inject``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fasterdb_admin.commands.inject import Sidecar
from fasterdb_sidecar import __version__
from tests.chart.conftest import find, render
from tests.chart.test_chart import FIRST_NATIVE, LAST_WITHOUT_NATIVE, NEWEST, validate_all
from tests.harness import run_cli

SECRET = "my-db-credentials"
IMAGE = f"fasterdb-sidecar:{__version__}"


def example(example_chart: Path, mode: str = "auto", kube_version: str = "", **more: Any) -> list[dict[str, Any]]:
    sidecar_values = {"database": {"existingSecret": SECRET}, "sidecar": {"mode": mode}, "kubeVersion": kube_version}
    return render({"fasterdb-sidecar": {**sidecar_values, **more}}, name="shop", chart_dir=example_chart)


def pod(objects: list[dict[str, Any]], kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, kind)["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("kube_version", [FIRST_NATIVE, NEWEST])
def test_the_example_application_chart_gets_a_native_sidecar(example_chart: Path, kube_version: str) -> None:
    objects = example(example_chart, kube_version=kube_version)
    validate_all(objects, kube_version)
    # Only the application's objects: no standalone sidecar Deployment, no Secret (existingSecret).
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == [
        ("Deployment", "shop-example-app"),
        ("Service", "shop-example-app"),
    ]
    spec = pod(objects)
    sidecar = spec["initContainers"][0]
    assert sidecar["name"] == "fasterdb-sidecar" and sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/health/startup"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/health/db"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert [v["name"] for v in spec["volumes"]] == ["fasterdb-secrets", "fasterdb-tmp", "srv"]
    annotations = find(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/fasterdb-secret" in annotations


def test_the_example_application_chart_in_container_mode(example_chart: Path) -> None:
    for mode, version in (("auto", LAST_WITHOUT_NATIVE), ("container", NEWEST)):
        objects = example(example_chart, mode, version)
        validate_all(objects, version)
        spec = pod(objects)
        assert not spec.get("initContainers")
        assert [c["name"] for c in spec["containers"]] == ["fasterdb-sidecar", "app"]


def test_the_example_chart_renders_the_secret_when_it_holds_the_dsn(example_chart: Path) -> None:
    values = {"fasterdb-sidecar": {"database": {"primaryDsn": "postgresql://app:pw@db/app"}}}
    objects = render(values, name="shop", chart_dir=example_chart)
    secret = find(objects, "Secret")
    volume = next(v for v in pod(objects)["volumes"] if v["name"] == "fasterdb-secrets")
    assert {s["secret"]["name"] for s in volume["projected"]["sources"]} == {secret["metadata"]["name"]}


@pytest.mark.parametrize("mode", ["native", "container"])
def test_inject_adds_exactly_what_the_chart_renders(example_chart: Path, mode: str) -> None:
    spec = pod(example(example_chart, mode, NEWEST))
    placed = spec["initContainers"] if mode == "native" else spec["containers"]
    chart_container = next(c for c in placed if c["name"] == "fasterdb-sidecar")
    sidecar = Sidecar("native" if mode == "native" else "container", SECRET, IMAGE)
    assert sidecar.container() == chart_container
    assert sidecar.volumes() == [v for v in spec["volumes"] if v["name"].startswith("fasterdb-")]


WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {fsGroup: 2000}
      initContainers:
        - {name: migrate, image: shop:1, command: [migrate]}
      containers:
        - name: web
          image: shop:1
          ports: [{name: http, containerPort: 8000}]
      volumes:
        - {name: data, emptyDir: {}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: queue, namespace: shop}
spec:
  serviceName: queue
  selector: {matchLabels: {app: queue}}
  template:
    metadata: {labels: {app: queue}}
    spec:
      containers: [{name: queue, image: queue:1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: agent:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: backfill, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: backfill, image: shop:1}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: shop:1}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""

SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_of(obj: dict[str, Any]) -> dict[str, Any]:
    node = obj
    for key in SPEC_PATHS[obj["kind"]]:
        node = node[key]
    return node


def test_inject_every_workload_kind_idempotently(tmp_path: Path) -> None:
    source = tmp_path / "workloads.yaml"
    source.write_text(WORKLOADS)
    first = run_cli("inject", "-f", str(source), "--secret", SECRET)
    assert first.returncode == 0, first.stderr
    documents = list(yaml.safe_load_all(first.stdout))
    assert [d["kind"] for d in documents] == ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service"]
    original = list(yaml.safe_load_all(WORKLOADS))
    assert documents[-1] == original[-1]  # not a workload: unchanged
    for document in documents[:-1]:
        kubernetes_validate.validate(document, NEWEST, strict=True)
        spec = pod_of(document)
        assert spec["initContainers"][0] == Sidecar("native", SECRET, IMAGE).container()
        assert spec["securityContext"]["fsGroup"] in (2000, 10001)
    web = pod_of(documents[0])
    assert [c["name"] for c in web["initContainers"]] == ["fasterdb-sidecar", "migrate"]
    assert [v["name"] for v in web["volumes"]] == ["data", "fasterdb-secrets", "fasterdb-tmp"]
    assert web["securityContext"] == {"fsGroup": 2000}  # the pod's own group serves as well
    # Pods without an fsGroup get the sidecar's, and the user is told so.
    assert "StatefulSet/queue: set securityContext.fsGroup=10001" in first.stderr

    # A second run changes nothing.
    second = run_cli("inject", "-f", "-", "--secret", SECRET, stdin=first.stdout)
    assert second.returncode == 0 and second.stdout == first.stdout

    # Switching mode moves the sidecar rather than adding another one.
    moved = run_cli("inject", "-f", "-", "--secret", SECRET, "--mode", "container", stdin=WORKLOADS.split("---")[0])
    assert moved.returncode == 0, moved.stderr
    again = run_cli("inject", "-f", "-", "--mode", "native", "--secret", SECRET, stdin=moved.stdout)
    assert yaml.safe_load(again.stdout) == documents[0]


def test_inject_container_mode_and_a_list(tmp_path: Path) -> None:
    items = [d for d in yaml.safe_load_all(WORKLOADS) if d["kind"] in ("Deployment", "Service")]
    listing = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
    result = run_cli(
        "inject", "-f", "-", "--mode", "container", "--image", "registry.example/fdb@sha256:" + "0" * 64, stdin=listing
    )
    assert result.returncode == 0, result.stderr
    deployment = yaml.safe_load(result.stdout)["items"][0]
    kubernetes_validate.validate(deployment, LAST_WITHOUT_NATIVE, strict=True)
    spec = pod_of(deployment)
    assert [c["name"] for c in spec["containers"]] == ["web", "fasterdb-sidecar"]  # the app stays the default
    assert spec["containers"][1]["image"].startswith("registry.example/fdb@sha256:")
    assert "restartPolicy" not in spec["containers"][1]


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["--mode", "container"], WORKLOADS, "Job/backfill runs to completion"),
        ([], "kind: Deployment\nspec: [\n", "stdin is not valid YAML at line 3"),
        ([], WORKLOADS.replace("containerPort: 8000", "containerPort: 8080"), "port 8080 is taken by container 'web'"),
        ([], "kind: Deployment\nmetadata: {name: x}\nspec: {}\n", "Deployment/x has no pod template"),
    ],
)
def test_inject_refuses_with_one_clear_line(args: list[str], stdin: str, needle: str) -> None:
    result = run_cli("inject", "-f", "-", *args, stdin=stdin)
    assert result.returncode == 3 and result.stdout == ""
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_inject_names_a_missing_file(tmp_path: Path) -> None:
    result = run_cli("inject", "-f", str(tmp_path / "nope.yaml"))
    assert result.returncode == 3 and "cannot read" in result.stderr and "No such file" in result.stderr


def test_inject_without_workloads_says_so() -> None:
    result = run_cli("inject", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    assert result.returncode == 0 and "nothing injected" in result.stderr
    assert yaml.safe_load(result.stdout)["kind"] == "ConfigMap"
