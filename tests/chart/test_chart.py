"""The Helm chart, rendered and linted by Helm's engine and validated against Kubernetes schemas."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from tests.chart.conftest import CHART, find, render, scenario_values

# Oldest and newest Kubernetes versions we support (Chart.yaml kubeVersion: >=1.25).
KUBE_VERSIONS = ["1.25.0", "1.37.0"]
CRDS = {"ServiceMonitor"}  # not in the core schemas; checked by hand below


def sidecar_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = find(objects, "Deployment")
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "fasterdb-sidecar")


def test_lint_has_no_errors(scenario: str) -> None:
    import helm_python as helm

    report = helm.lint(str(CHART), scenario_values(scenario), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report["messages"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_strictly(scenario: str, kube_version: str) -> None:
    objects = render(scenario_values(scenario))
    assert objects
    for obj in objects:
        if obj["kind"] in CRDS:
            continue
        kubernetes_validate.validate(obj, kube_version, strict=True)


def test_probes_follow_the_database_and_liveness_never_does(scenario: str) -> None:
    values = scenario_values(scenario)
    container = sidecar_container(render(values))
    ready, live, startup = container["readinessProbe"], container["livenessProbe"], container["startupProbe"]
    assert ready["httpGet"] == {"path": "/health/db", "port": "http"}
    assert live["httpGet"] == {"path": "/health/live", "port": "http"}
    assert startup["httpGet"]["path"] == "/health/live"
    health_timeout = float(values.get("health", {}).get("timeout", 1))
    assert ready["timeoutSeconds"] > health_timeout  # kubelet waits longer than the sidecar's deadline
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    pod = find(render(values), "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 5 + 10


def test_hardened_security_defaults(scenario: str) -> None:
    objects = render(scenario_values(scenario))
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in sidecar_container(objects)["volumeMounts"]
    assert find(objects, "ServiceAccount")["automountServiceAccountToken"] is False


def test_dsns_reach_the_pod_only_through_a_secret() -> None:
    values = scenario_values("replicas")
    objects = render(values)
    secret = find(objects, "Secret")
    assert secret["stringData"]["primary-dsn"] == values["database"]["primaryDsn"]
    assert secret["stringData"]["replica-dsns"] == ",".join(values["database"]["replicaDsns"])
    assert secret["stringData"]["admin-token"] == values["adminToken"]
    deployment = find(objects, "Deployment")
    text = json.dumps(deployment)
    assert "postgresql://" not in text and values["adminToken"] not in text
    env = {e["name"]: e for e in sidecar_container(objects)["env"]}
    assert env["FASTERDB_PRIMARY_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "primary-dsn",
    }
    assert env["FASTERDB_REPLICA_DSNS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["FASTERDB_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "admin-token"
    assert env["FASTERDB_MAX_LAG_BYTES"]["value"] == "16MB"


def test_existing_secret_is_used_and_nothing_rendered() -> None:
    objects = render(scenario_values("existing-secret"))
    assert [o for o in objects if o["kind"] == "Secret"] == []
    env = {e["name"]: e for e in sidecar_container(objects)["env"]}
    assert env["FASTERDB_PRIMARY_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "my-db-credentials"


def test_checksum_rolls_pods_when_the_secret_changes() -> None:
    def checksum(dsn: str) -> str:
        deployment = find(render({"database": {"primaryDsn": dsn}}), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/secret"])

    assert checksum("postgresql://a:b@h1/db") != checksum("postgresql://a:b@h2/db")


def test_rendering_without_database_fails_with_a_clear_message() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmRenderError) as info:
        render({})
    assert "set database.primaryDsn" in str(info.value) and "database.existingSecret" in str(info.value)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (
            {"database": {"primaryDsn": "postgresql://a@h/d"}, "probes": {"readiness": {"timeoutSeconds": 1}}},
            "timeoutSeconds must be larger",
        ),
        (
            {"database": {"primaryDsn": "postgresql://a@h/d"}, "terminationGracePeriodSeconds": 10},
            "terminationGracePeriodSeconds",
        ),
        ({"database": {"primaryDsn": "postgresql://a@h/d"}, "app": {"enabled": True}}, "app.image"),
    ],
)
def test_inconsistent_values_fail(values: dict[str, Any], needle: str) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError) as info:
        render(values)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        {"database": {"primaryDsn": "mysql://a@h/d"}},
        {"database": {"primaryDsn": "postgresql://a@h/d"}, "adminToken": "short"},
        {"database": {"primaryDsn": "postgresql://a@h/d"}, "replicaLag": {"maxBytes": "16XB"}},
        {"database": {"primaryDsn": "postgresql://a@h/d"}, "unknownKey": 1},
        {"database": {"primaryDsn": "postgresql://a@h/d"}, "pool": {"maxSize": 0}},
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError):
        render(values)


def test_app_container_runs_beside_the_sidecar() -> None:
    objects = render(scenario_values("full"))
    containers = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["fasterdb-sidecar", "app"]
    monitor = find(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    role = find(objects, "Role")
    assert {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get", "create"]} in role["rules"]
    policy = find(objects, "NetworkPolicy")
    assert policy["spec"]["egress"][0]["ports"][0]["port"] == 5432


def test_helm_test_pod_runs_the_cli_health_check() -> None:
    objects = render(scenario_values("default"))
    pod = find(objects, "Pod", name_suffix="-test-health")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["fasterdb-admin", "health"]
    assert command[command.index("--url") + 1] == "http://my-db-sidecar-fasterdb-sidecar:8080"
