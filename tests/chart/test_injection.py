"""The sidecar in the user's own pods: the example application chart and ``fasterdb-admin inject``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fasterdb_admin.commands.inject import ANNOTATION, IMAGE_REPOSITORY, Sidecar
from fasterdb_sidecar import __version__
from tests.chart.conftest import ROOT, find, render
from tests.chart.test_chart import FIRST_NATIVE, LAST_WITHOUT_NATIVE, NEWEST, validate_all
from tests.harness import CliResult, run_cli

SECRET = "my-db-credentials"
IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"  # the published image: the chart's and inject's default


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


def test_the_usual_dependency_switch_turns_the_sidecar_on_and_off(example_chart: Path) -> None:
    """Chart.yaml's ``condition: fasterdb-sidecar.enabled``: the values schema accepts the key."""
    on = example(example_chart, "native", NEWEST, enabled=True)
    assert pod(on)["initContainers"][0]["name"] == "fasterdb-sidecar"
    off = render({"fasterdb-sidecar": {"enabled": False}}, name="shop", chart_dir=example_chart)
    validate_all(off, NEWEST)
    spec = pod(off)
    assert [c["name"] for c in spec["containers"]] == ["app"] and "initContainers" not in spec
    assert [v["name"] for v in spec["volumes"]] == ["srv"]
    assert "annotations" not in find(off, "Deployment")["spec"]["template"]["metadata"]


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
    for document, before in zip(documents[:-1], original, strict=False):
        kubernetes_validate.validate(document, NEWEST, strict=True)
        spec = pod_of(document)
        assert spec["initContainers"][0] == Sidecar("native", SECRET, IMAGE).container()
        assert spec.get("securityContext") == pod_of(before).get("securityContext")  # the pod's, untouched
    web = pod_of(documents[0])
    assert [c["name"] for c in web["initContainers"]] == ["fasterdb-sidecar", "migrate"]
    assert [v["name"] for v in web["volumes"]] == ["data", "fasterdb-secrets", "fasterdb-tmp"]
    assert "fsGroup" not in first.stderr

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


# What the issue found inject doing wrong: a StatefulSet that runs as root (with a data volume), a
# List with an Argo Rollout and a bare Pod, and a DaemonSet on the node's network.
ROOT_STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg, namespace: db}
spec:
  serviceName: pg
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec:
      securityContext: {runAsUser: 0, runAsGroup: 0}
      containers:
        - name: postgres
          image: postgres:17
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 10Gi}}
"""
ROLLOUT_AND_POD = """
apiVersion: v1
kind: List
items:
  - apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata: {name: web, namespace: shop}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}]}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: "shop:1", ports: [{name: http, containerPort: 8000}]}]
  - apiVersion: v1
    kind: Pod
    metadata: {name: debug, namespace: shop}
    spec:
      containers: [{name: shell, image: "busybox:1", command: [sleep, infinity]}]
"""
HOST_NETWORK_DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      hostNetwork: true
      containers: [{name: agent, image: "agent:1"}]
"""


EXAMPLE_DEPLOYMENT = ROOT / "deploy" / "examples" / "inject" / "deployment.yaml"


def sidecar_in(spec: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "fasterdb-sidecar"
    )
    return found


def effective_identity(spec: dict[str, Any], container: dict[str, Any], image_user: int = 10001) -> dict[str, Any]:
    """The user, groups and runAsNonRoot kubelet gives a container (its own settings over the pod's)."""
    pod_ctx, ctx = spec.get("securityContext") or {}, container.get("securityContext") or {}

    def setting(key: str, default: Any = None) -> Any:
        return ctx.get(key, pod_ctx.get(key, default))

    user = setting("runAsUser", image_user)
    groups = {setting("runAsGroup", user), *(pod_ctx.get("supplementalGroups") or [])}
    if "fsGroup" in pod_ctx:
        groups.add(pod_ctx["fsGroup"])
    return {"user": user, "groups": groups, "non_root": setting("runAsNonRoot", False)}


def starts(spec: dict[str, Any], container: dict[str, Any]) -> bool:
    """False where kubelet refuses with CreateContainerConfigError (runAsNonRoot, but the user is root)."""
    identity = effective_identity(spec, container)
    return not (identity["non_root"] and identity["user"] == 0)


def reads_its_secret_files(spec: dict[str, Any], container: dict[str, Any]) -> bool:
    """Whether the container's user can read the projected Secret's files as kubelet writes them.

    Owner root; with a pod fsGroup the group is the fsGroup and kubelet adds group read (0440).
    """
    volume = next(v for v in spec["volumes"] if v["name"] == "fasterdb-secrets")
    mode, group = volume["projected"]["defaultMode"], 0
    if "fsGroup" in (spec.get("securityContext") or {}):
        mode, group = mode | 0o440, spec["securityContext"]["fsGroup"]
    identity = effective_identity(spec, container)
    return bool(
        (identity["user"] == 0 and mode & 0o400) or (group in identity["groups"] and mode & 0o040) or mode & 0o004
    )


def inject_text(text: str, *args: str) -> tuple[CliResult, list[Any]]:
    result = run_cli("inject", "-f", "-", "--secret", SECRET, *args, stdin=text)
    return result, list(yaml.safe_load_all(result.stdout)) if result.returncode == 0 else []


@pytest.mark.parametrize("mode", ["native", "container"])
def test_inject_into_a_statefulset_that_runs_as_root(mode: str) -> None:
    result, (statefulset,) = inject_text(ROOT_STATEFULSET, "--mode", mode)
    assert result.returncode == 0, result.stderr
    kubernetes_validate.validate(statefulset, NEWEST, strict=True)
    spec = pod_of(statefulset)
    sidecar = sidecar_in(spec)
    # Its own identity: it starts (no CreateContainerConfigError blocking the pod) as uid 10001...
    assert starts(spec, sidecar) and effective_identity(spec, sidecar)["user"] == 10001
    assert sidecar["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # ...and reads its secret files without a pod-wide fsGroup, so kubelet never chowns the data
    # volume (PostgreSQL refuses a group-accessible data directory).
    assert reads_its_secret_files(spec, sidecar)
    assert spec["securityContext"] == {"runAsUser": 0, "runAsGroup": 0}
    postgres = next(c for c in spec["containers"] if c["name"] == "postgres")
    assert effective_identity(spec, postgres)["user"] == 0  # the application's own identity is unchanged


def test_the_chart_and_the_example_pods_read_their_secret_files(example_chart: Path) -> None:
    renderings = [
        pod(render({"database": {"existingSecret": SECRET}})),  # standalone: fsGroup 10001
        pod(example(example_chart, "native", NEWEST)),  # no fsGroup
        pod_of(yaml.safe_load(run_cli("inject", "-f", str(EXAMPLE_DEPLOYMENT)).stdout)),  # no fsGroup
    ]
    for spec in renderings:
        sidecar = sidecar_in(spec)
        assert starts(spec, sidecar) and reads_its_secret_files(spec, sidecar)


def test_inject_a_rollout_and_a_bare_pod_in_a_list() -> None:
    result, (listing,) = inject_text(ROLLOUT_AND_POD)
    assert result.returncode == 0, result.stderr
    rollout, bare = listing["items"]
    for spec in (rollout["spec"]["template"]["spec"], bare["spec"]):
        assert spec["initContainers"][0] == Sidecar("native", SECRET, IMAGE).container()
        assert [v["name"] for v in spec["volumes"]] == ["fasterdb-secrets", "fasterdb-tmp"]
    kubernetes_validate.validate(bare, NEWEST, strict=True)
    # Argo's Rollout has no schema here: its pod template is a Deployment's, so validate it as one.
    as_deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": rollout["metadata"],
        "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]},
    }
    kubernetes_validate.validate(as_deployment, NEWEST, strict=True)
    assert rollout["spec"]["strategy"] == {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}
    assert ANNOTATION in rollout["spec"]["template"]["metadata"]["annotations"]
    assert ANNOTATION in bare["metadata"]["annotations"]  # a Pod is its own template


def test_a_host_network_daemonset_is_refused_unless_allowed_and_then_warned_about() -> None:
    refused = run_cli("inject", "-f", "-", stdin=HOST_NETWORK_DAEMONSET)
    assert refused.returncode == 3 and refused.stdout == ""
    assert "DaemonSet/node-agent uses the node's network (hostNetwork)" in refused.stderr
    assert "port 8080 of every node" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    allowed, (daemonset,) = inject_text(HOST_NETWORK_DAEMONSET, "--allow-host-network", "--port", "18080")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr.startswith("WARNING: DaemonSet/node-agent uses the node's network")
    assert "port 18080 of every address of each node" in allowed.stderr
    kubernetes_validate.validate(daemonset, NEWEST, strict=True)


def test_the_annotation_records_what_was_injected_and_the_version() -> None:
    _, (statefulset,) = inject_text(ROOT_STATEFULSET, "--mode", "container", "--port", "9000")
    record = json.loads(statefulset["spec"]["template"]["metadata"]["annotations"][ANNOTATION])
    assert record == {
        "version": __version__,
        "mode": "container",
        "container": "fasterdb-sidecar",
        "volumes": ["fasterdb-secrets", "fasterdb-tmp"],
        "image": IMAGE,
        "secret": SECRET,
        "port": 9000,
        "created": ["volumes", "annotations"],
    }


ROUND_TRIPS = {
    "workloads": WORKLOADS,
    "root-statefulset": ROOT_STATEFULSET,
    "rollout-and-pod": ROLLOUT_AND_POD,
    "example": EXAMPLE_DEPLOYMENT.read_text(),
}


@pytest.mark.parametrize("mode", ["native", "container"])
@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_uninject_removes_exactly_what_inject_added(name: str, mode: str) -> None:
    text = ROUND_TRIPS[name]
    if mode == "container" and name == "workloads":
        text = "---".join(d for d in text.split("---") if "kind: Job" not in d and "kind: CronJob" not in d)
    original = [d for d in yaml.safe_load_all(text) if d]
    injected = run_cli("inject", "-f", "-", "--mode", mode, stdin=text)
    assert injected.returncode == 0, injected.stderr
    assert list(yaml.safe_load_all(injected.stdout)) != original
    removed = run_cli("uninject", "-f", "-", stdin=injected.stdout)
    assert removed.returncode == 0 and removed.stderr == "", removed.stderr
    assert list(yaml.safe_load_all(removed.stdout)) == original
    # Idempotent both ways: nothing left to remove, and a second inject changes nothing.
    again = run_cli("uninject", "-f", "-", stdin=removed.stdout)
    assert again.returncode == 0 and list(yaml.safe_load_all(again.stdout)) == original
    assert "nothing removed" in again.stderr
    twice = run_cli("inject", "-f", "-", "--mode", mode, stdin=injected.stdout)
    assert twice.stdout == injected.stdout


def test_uninject_leaves_a_sidecar_it_did_not_add(example_chart: Path) -> None:
    charted = yaml.safe_dump(find(example(example_chart, "native", NEWEST), "Deployment"))
    result = run_cli("uninject", "-f", "-", stdin=charted)
    assert result.returncode == 0 and yaml.safe_load(result.stdout) == yaml.safe_load(charted)
    assert "not added by inject" in result.stderr
    # inject will not put a second one beside it.
    refused = run_cli("inject", "-f", "-", stdin=charted)
    assert refused.returncode == 3 and "already has a fasterdb-sidecar container" in refused.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (
            ["--mode", "container"],
            "apiVersion: v1\nkind: Pod\nmetadata: {name: once}\nspec:\n  restartPolicy: Never\n"
            "  containers: [{name: c, image: i}]\n",
            "Pod/once runs to completion",
        ),
        (
            [],
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"
            "spec: {workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}}\n",
            "Rollout/r takes its pod template from spec.workloadRef",
        ),
        (
            [],
            WORKLOADS.split("---")[0].replace("{name: data, emptyDir: {}}", "{name: fasterdb-tmp, emptyDir: {}}"),
            "already has a volume named 'fasterdb-tmp'",
        ),
    ],
)
def test_inject_refuses_what_it_cannot_do_well(args: list[str], stdin: str, needle: str) -> None:
    result = run_cli("inject", "-f", "-", *args, stdin=stdin)
    assert result.returncode == 3 and result.stdout == "" and needle in result.stderr, result.stderr


def test_uninject_refuses_an_annotation_it_did_not_write() -> None:
    _, (statefulset,) = inject_text(ROOT_STATEFULSET)
    statefulset["spec"]["template"]["metadata"]["annotations"][ANNOTATION] = "yes"
    result = run_cli("uninject", "-f", "-", stdin=yaml.safe_dump(statefulset))
    assert result.returncode == 3 and "annotation is not one inject wrote" in result.stderr
