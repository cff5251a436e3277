"""Every port reference of the rendered chart, resolved the way the implementations resolve it.

- A Service's ``targetPort`` name: the EndpointSlice controller looks it up in ``containers``; from
  Kubernetes 1.33 also in sidecar (``restartPolicy: Always``) init containers (kubernetes#127976).
  Unresolved, the Service has no endpoints.
- A NetworkPolicy port name: kindnet's policy controller and Calico look it up in ``containers``
  only. Unresolved, the rule allows nothing on it.
- A probe's port name: kubelet looks it up in the probed container itself (native sidecars too).
- A number is used as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import find, render, scenario_values
from tests.chart.test_chart import DSN, FIRST_NATIVE, LAST_WITHOUT_NATIVE, NEWEST, OLDEST

APP = {"name": "app", "image": "registry.example/shop:1.0", "ports": [{"name": "web", "containerPort": 8000}]}
# Each version where resolution changes: no native sidecars, native sidecars before and after
# Services resolve their ports, and the newest.
VERSIONS = [OLDEST, LAST_WITHOUT_NATIVE, FIRST_NATIVE, "1.32.0", "1.33.0", NEWEST]


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = version.lstrip("v").split(".")
    return int(major), int(minor_)


def named(containers: list[dict[str, Any]], name: str) -> int | None:
    return next((p["containerPort"] for c in containers for p in c.get("ports", []) if p.get("name") == name), None)


def service_target(pod: dict[str, Any], target: int | str, kube_version: str) -> int | None:
    """The pod port a Service's targetPort reaches, or None (no endpoint)."""
    if isinstance(target, int):
        return target
    containers = list(pod["containers"])
    if minor(kube_version) >= (1, 33):
        containers += [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return named(containers, target)


def policy_port(pod: dict[str, Any], port: int | str) -> int | None:
    """The pod port a NetworkPolicy rule's port means to kindnet and Calico, or None (nothing)."""
    return port if isinstance(port, int) else named(pod["containers"], port)


def probe_port(container: dict[str, Any], port: int | str) -> int | None:
    return port if isinstance(port, int) else named([container], port)


def sidecar_of(pod: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "fasterdb-sidecar"]
    assert len(found) == 1
    return found[0]


# native needs 1.29 (below, it refuses to render: tests/chart/test_chart.py).
MODES = [(m, v) for v in VERSIONS for m in ("auto", "native", "container") if m != "native" or minor(v) >= (1, 29)]


@pytest.mark.parametrize(("mode", "kube_version"), MODES)
@pytest.mark.parametrize("with_app", [False, True], ids=["alone", "with-app"])
@pytest.mark.parametrize("port", [8080, 9090])
def test_service_policy_and_probes_reach_the_sidecar_in_every_mode(
    kube_version: str, mode: str, with_app: bool, port: int
) -> None:
    values: dict[str, Any] = {
        **DSN,
        "sidecar": {"mode": mode},
        "kubeVersion": kube_version,
        "service": {"port": port},
        "networkPolicy": {"enabled": True, "apiServerCidrs": ["172.18.0.0/16"]},
    }
    if with_app:
        values["app"] = APP
    objects = render(values)
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    sidecar = sidecar_of(pod)
    assert [p["containerPort"] for p in sidecar["ports"]] == [port]

    service = find(objects, "Service")
    assert [service_target(pod, p["targetPort"], kube_version) for p in service["spec"]["ports"]] == [port]

    policy = find(objects, "NetworkPolicy")
    sidecar_rule = policy["spec"]["ingress"][0]
    assert [policy_port(pod, p["port"]) for p in sidecar_rule["ports"]] == [port]
    if with_app:
        app_rule = policy["spec"]["ingress"][1]
        assert [policy_port(pod, p["port"]) for p in app_rule["ports"]] == [8000]

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe_port(sidecar, sidecar[probe]["httpGet"]["port"]) == port


@pytest.mark.parametrize("scenario_name", ["default", "existing-secret", "full", "replicas"])
def test_every_scenario_resolves_on_the_last_version_before_service_sidecar_ports(scenario_name: str) -> None:
    values = {**scenario_values(scenario_name), "kubeVersion": "1.32.0"}
    objects = render(values)
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    port = sidecar_of(pod)["ports"][0]["containerPort"]
    for service_port in find(objects, "Service")["spec"]["ports"]:
        assert service_target(pod, service_port["targetPort"], "1.32.0") == port
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        assert all(policy_port(pod, p["port"]) is not None for r in policy["spec"]["ingress"] for p in r["ports"])


def test_the_example_application_service_reaches_its_app(example_chart: Path) -> None:
    for mode, version in (("native", "1.32.0"), ("container", "1.32.0"), ("auto", NEWEST)):
        values = {"fasterdb-sidecar": {"database": {"existingSecret": "db"}, "sidecar": {"mode": mode}}}
        objects = render(values, name="shop", chart_dir=example_chart, kube_version=version)
        pod = find(objects, "Deployment")["spec"]["template"]["spec"]
        targets = [service_target(pod, p["targetPort"], version) for p in find(objects, "Service")["spec"]["ports"]]
        assert targets == [8000]
