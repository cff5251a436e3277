"""The Helm chart, rendered and linted by Helm's engine and validated against Kubernetes schemas."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from fasterdb_sidecar.drain import STOP_SECONDS
from tests.chart.conftest import CHART, find, render, scenario_values

# Oldest supported (Chart.yaml kubeVersion: >=1.25), the last without native sidecars, the first
# with them, and the newest schemas kubernetes-validate has.
OLDEST, LAST_WITHOUT_NATIVE, FIRST_NATIVE = "1.25.0", "1.28.0", "1.29.0"
NEWEST = kubernetes_validate.utils.latest_version()
CRDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}  # not in the core schemas; checked by hand
DSN = {"database": {"primaryDsn": "postgresql://app:secret@db:5432/app"}}
APP = {"name": "app", "image": "registry.example/shop:1.0", "ports": [{"name": "web", "containerPort": 8000}]}


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def sidecar_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec = pod_spec(objects)
    found = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "fasterdb-sidecar"]
    assert len(found) == 1
    return found[0]


def validate_all(objects: list[dict[str, Any]], kube_version: str) -> None:
    assert objects
    for obj in objects:
        if obj["kind"] not in CRDS:
            kubernetes_validate.validate(obj, kube_version, strict=True)


def test_lint_has_no_errors(scenario: str) -> None:
    import helm_python as helm

    report = helm.lint(str(CHART), scenario_values(scenario), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report["messages"]


@pytest.mark.parametrize("kube_version", [OLDEST, NEWEST])
def test_every_scenario_validates_strictly(scenario: str, kube_version: str) -> None:
    values = {**scenario_values(scenario), "kubeVersion": kube_version}
    validate_all(render(values), kube_version)


@pytest.mark.parametrize(
    ("mode", "kube_version", "placed"),
    [
        ("auto", OLDEST, "containers"),
        ("auto", LAST_WITHOUT_NATIVE, "containers"),
        ("auto", FIRST_NATIVE, "initContainers"),
        ("auto", NEWEST, "initContainers"),
        ("native", FIRST_NATIVE, "initContainers"),
        ("native", NEWEST, "initContainers"),
        ("container", LAST_WITHOUT_NATIVE, "containers"),
        ("container", NEWEST, "containers"),
    ],
)
def test_every_mode_for_every_kubernetes_version(mode: str, kube_version: str, placed: str) -> None:
    values = {**DSN, "app": APP, "sidecar": {"mode": mode}, "kubeVersion": kube_version}
    objects = render(values)
    validate_all(objects, kube_version)
    spec = pod_spec(objects)
    sidecar = sidecar_container(objects)
    assert spec[placed][0] is sidecar  # a native sidecar first among the init containers
    assert [c["name"] for c in spec["containers"]] == (
        ["fasterdb-sidecar", "app"] if placed == "containers" else ["app"]
    )
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    if placed == "initContainers":
        assert sidecar["restartPolicy"] == "Always"
        assert env["FASTERDB_DRAIN_MIN_SECONDS"] == "0"  # stopped after the app: nothing to wait for
    else:
        assert "restartPolicy" not in sidecar and "initContainers" not in spec
        assert env["FASTERDB_DRAIN_MIN_SECONDS"] == "5"  # serve on while endpoints drop the pod


def test_native_mode_refuses_a_cluster_without_native_sidecars(capfd: pytest.CaptureFixture[str]) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError) as info:
        render({**DSN, "app": APP, "sidecar": {"mode": "native"}, "kubeVersion": LAST_WITHOUT_NATIVE})
    assert "needs Kubernetes 1.29" in str(info.value)
    # The real capability check: Helm's lint given the cluster version fills .Capabilities.KubeVersion
    # (lint only logs a template's fail(), on the process's stderr).
    capfd.readouterr()
    helm.lint(str(CHART), {**DSN, "sidecar": {"mode": "native"}}, kube_version=LAST_WITHOUT_NATIVE)
    assert "needs Kubernetes 1.29 or newer (native sidecar containers); this is v1.28.0" in capfd.readouterr().err
    helm.lint(str(CHART), {**DSN, "sidecar": {"mode": "native"}}, kube_version=FIRST_NATIVE)
    assert "needs Kubernetes" not in capfd.readouterr().err


def test_the_sidecar_alone_is_a_regular_container_in_every_mode() -> None:
    for mode in ("auto", "native", "container"):
        spec = pod_spec(render({**DSN, "sidecar": {"mode": mode}}))
        assert [c["name"] for c in spec["containers"]] == ["fasterdb-sidecar"] and "initContainers" not in spec


def test_probes_follow_the_lifecycle_and_liveness_never_touches_the_database(scenario: str) -> None:
    values = scenario_values(scenario)
    container = sidecar_container(render(values))
    ready, live, startup = container["readinessProbe"], container["livenessProbe"], container["startupProbe"]
    assert ready["httpGet"] == {"path": "/health/db", "port": "fasterdb-http"}
    assert live["httpGet"] == {"path": "/health/live", "port": "fasterdb-http"}
    assert startup["httpGet"] == {"path": "/health/startup", "port": "fasterdb-http"}
    health_timeout = float(values.get("health", {}).get("timeout", 1))
    assert ready["timeoutSeconds"] > health_timeout  # kubelet waits longer than the sidecar's deadline
    assert container["ports"] == [{"name": "fasterdb-http", "containerPort": 8080, "protocol": "TCP"}]
    assert "lifecycle" not in container  # no preStop sleep: FASTERDB_DRAIN_MIN_SECONDS does that
    env = {e["name"]: e.get("value") for e in container["env"]}
    pod = pod_spec(render(values))
    drain = float(env["FASTERDB_DRAIN_MIN_SECONDS"]) + float(env["FASTERDB_SHUTDOWN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > drain + STOP_SECONDS


def test_hardened_security_defaults(scenario: str) -> None:
    objects = render(scenario_values(scenario))
    pod = pod_spec(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # For an app container's volumes; chowned only when their root does not match already.
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert pod["automountServiceAccountToken"] is False
    for container in pod.get("initContainers", []) + pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
    # The sidecar's identity is its own, whatever pod it is placed in.
    ctx = sidecar_container(objects)["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["runAsNonRoot"]) == (10001, 10001, True)
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "fasterdb-tmp", "mountPath": "/tmp"} in sidecar_container(objects)["volumeMounts"]
    assert find(objects, "ServiceAccount")["automountServiceAccountToken"] is False


def test_secrets_reach_the_sidecar_only_as_read_only_files(scenario: str) -> None:
    values = scenario_values(scenario)
    objects = render(values)
    sidecar = sidecar_container(objects)
    assert not [e for e in sidecar["env"] if "valueFrom" in e]  # no secretKeyRef at all
    files = {e["name"]: e["value"] for e in sidecar["env"] if e["name"].endswith("_FILE")}
    assert files == {
        "FASTERDB_PRIMARY_DSN_FILE": "/etc/fasterdb/secrets/primary-dsn",
        "FASTERDB_REPLICA_DSNS_FILE": "/etc/fasterdb/secrets/replica-dsns",
        "FASTERDB_ADMIN_TOKEN_FILE": "/etc/fasterdb/secrets/admin-token",
    }
    mount = next(m for m in sidecar["volumeMounts"] if m["name"] == "fasterdb-secrets")
    assert mount == {"name": "fasterdb-secrets", "mountPath": "/etc/fasterdb/secrets", "readOnly": True}
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "fasterdb-secrets")
    # Readable to the sidecar's user without a pod-wide fsGroup; no other container mounts it.
    assert volume["projected"]["defaultMode"] == 0o444
    pod = pod_spec(objects)
    mounting = [
        c["name"]
        for c in pod.get("initContainers", []) + pod["containers"]
        if any(m["name"] == "fasterdb-secrets" for m in c.get("volumeMounts", []))
    ]
    assert mounting == ["fasterdb-sidecar"]
    sources = [s["secret"] for s in volume["projected"]["sources"]]
    secret = values["database"].get("existingSecret") or find(objects, "Secret")["metadata"]["name"]
    assert {s["name"] for s in sources} == {secret}
    assert [(s["items"][0]["key"], s.get("optional", False)) for s in sources] == [
        ("primary-dsn", False),
        ("replica-dsns", True),
        ("admin-token", True),
    ]
    text = json.dumps([o for o in objects if o["kind"] != "Secret"])
    assert "postgresql://" not in text and (values.get("adminToken") or "\0") not in text


def test_the_rendered_secret_holds_the_values() -> None:
    values = scenario_values("replicas")
    secret = find(render(values), "Secret")
    assert secret["stringData"]["primary-dsn"] == values["database"]["primaryDsn"]
    assert secret["stringData"]["replica-dsns"] == ",".join(values["database"]["replicaDsns"])
    assert secret["stringData"]["admin-token"] == values["adminToken"]


def test_existing_secret_is_used_and_nothing_rendered() -> None:
    objects = render(scenario_values("existing-secret"))
    assert [o for o in objects if o["kind"] == "Secret"] == []
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "fasterdb-secrets")
    assert {s["secret"]["name"] for s in volume["projected"]["sources"]} == {"my-db-credentials"}


def test_checksum_rolls_pods_when_the_secret_changes() -> None:
    def checksum(dsn: str) -> str:
        deployment = find(render({"database": {"primaryDsn": dsn}}), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/fasterdb-secret"])

    assert checksum("postgresql://a:b@h1/db") != checksum("postgresql://a:b@h2/db")


def test_namespace_override_and_image_digest() -> None:
    digest = "sha256:" + "ab" * 32
    objects = render({**DSN, "namespaceOverride": "db-tools", "image": {"repository": "r/s", "digest": digest}})
    assert {o["metadata"]["namespace"] for o in objects} == {"db-tools"}
    assert sidecar_container(objects)["image"] == f"r/s@{digest}"
    assert {o["metadata"]["namespace"] for o in render(DSN)} == {"apps"}  # the release's by default


def test_rendering_without_database_fails_with_a_clear_message() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmRenderError) as info:
        render({})
    assert "set database.primaryDsn" in str(info.value) and "database.existingSecret" in str(info.value)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({**DSN, "probes": {"readiness": {"timeoutSeconds": 1}}}, "timeoutSeconds must be larger"),
        ({**DSN, "terminationGracePeriodSeconds": 10}, "terminationGracePeriodSeconds"),
        ({**DSN, "lifecycle": {"shutdownTimeoutSeconds": 29.5}}, "terminationGracePeriodSeconds"),
        ({**DSN, "app": {"image": "x"}}, "needs at least name and image"),
        ({**DSN, "rbac": {"create": True, "subjects": []}}, "rbac.create needs rbac.subjects"),
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
        {**DSN, "adminToken": "short"},
        {**DSN, "replicaLag": {"maxBytes": "16XB"}},
        {**DSN, "unknownKey": 1},
        {**DSN, "pool": {"maxSize": 0}},
        {**DSN, "sidecar": {"mode": "sometimes"}},
        {**DSN, "image": {"repository": "r", "digest": "latest"}},
        {**DSN, "lifecycle": {"preStopSleepSeconds": 5}},
        {**DSN, "podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Sometimes"}},
        {**DSN, "enabled": "yes"},
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError):
        render(values)


def test_full_container_spec_for_the_app_and_the_optional_objects() -> None:
    values = scenario_values("full")
    objects = render(values)
    app = next(c for c in pod_spec(objects)["containers"] if c["name"] == "app")
    assert app == values["app"]  # a full Container spec, passed through as written
    assert {"name": "cache", "emptyDir": {"sizeLimit": "128Mi"}} in pod_spec(objects)["volumes"]
    monitor = find(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]


def test_the_role_grants_exactly_what_kube_mode_uses() -> None:
    role = find(render(scenario_values("full")), "Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list"]},
    ]


def test_network_policy_lets_the_api_servers_pod_proxy_in() -> None:
    values = scenario_values("full")
    policy = find(render(values), "NetworkPolicy")
    sidecar_rule = policy["spec"]["ingress"][0]
    assert sidecar_rule["ports"] == [{"port": 8080, "protocol": "TCP"}]  # by number (tests/chart/test_ports.py)
    assert {"ipBlock": {"cidr": values["networkPolicy"]["apiServerCidrs"][0]}} in sidecar_rule["from"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # with an app container: its egress is not cut off
    alone = find(render(scenario_values("default") | {"networkPolicy": {"enabled": True}}), "NetworkPolicy")
    assert alone["spec"]["egress"][0]["ports"][0]["port"] == 5432


def test_without_standalone_only_the_secret_and_rbac_are_rendered() -> None:
    values = {
        **DSN,
        "standalone": {"enabled": False},
        "rbac": {"create": True, "subjects": [{"kind": "ServiceAccount", "name": "ops", "namespace": "apps"}]},
        "networkPolicy": {"enabled": True},
        "serviceMonitor": {"enabled": True},
    }
    assert sorted(o["kind"] for o in render(values)) == ["Role", "RoleBinding", "Secret"]


def test_helm_test_pod_runs_the_cli_health_check() -> None:
    objects = render(scenario_values("default"))
    pod = find(objects, "Pod", name_suffix="-test-health")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert command[:2] == ["fasterdb-admin", "health"]
    assert command[command.index("--url") + 1] == "http://my-db-sidecar-fasterdb-sidecar:8080"


def test_helm_test_pod_pulls_like_the_sidecar() -> None:
    values = {**DSN, "imagePullSecrets": [{"name": "regcred"}], "image": {"repository": "r/s", "pullPolicy": "Always"}}
    pod = find(render(values), "Pod", name_suffix="-test-health")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert pod["spec"]["containers"][0]["image"] == sidecar_container(render(values))["image"]
    overridden = find(render({**values, "tests": {"image": "r/cli:1", "pullPolicy": "IfNotPresent"}}), "Pod")
    assert overridden["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(
    ("kube_version", "policy"), [(OLDEST, None), ("1.26.0", None), ("1.27.0", "AlwaysAllow"), (NEWEST, "AlwaysAllow")]
)
def test_unready_pods_may_be_evicted_so_drains_never_hang_in_a_database_outage(
    kube_version: str, policy: str | None
) -> None:
    objects = render({**DSN, "kubeVersion": kube_version})
    validate_all(objects, kube_version)  # absent where the API does not serve the field
    assert find(objects, "PodDisruptionBudget")["spec"].get("unhealthyPodEvictionPolicy") == policy
    # The cluster's own version, as Helm reports it, decides the same way.
    pdb = find(render(DSN, kube_version=kube_version), "PodDisruptionBudget")
    assert pdb["spec"].get("unhealthyPodEvictionPolicy") == policy
    unset = find(render({**DSN, "podDisruptionBudget": {"unhealthyPodEvictionPolicy": ""}}), "PodDisruptionBudget")
    assert "unhealthyPodEvictionPolicy" not in unset["spec"]


def test_the_prometheus_rule_renders_only_when_enabled_even_where_the_crd_exists() -> None:
    crd = ["monitoring.coreos.com/v1/PrometheusRule", "monitoring.coreos.com/v1"]
    assert [o for o in render(DSN, api_versions=crd) if o["kind"] == "PrometheusRule"] == []
    assert find(render({**DSN, "prometheusRule": {"enabled": True}}, api_versions=crd), "PrometheusRule")


def test_the_sidecar_listens_on_every_address_of_both_families(scenario: str) -> None:
    env = {e["name"]: e.get("value") for e in sidecar_container(render(scenario_values(scenario)))["env"]}
    assert env["FASTERDB_HOST"] == "::"  # tests/conformance/test_probes.py: IPv4 and IPv6 answer


def test_dual_stack_service_settings() -> None:
    service = find(
        render({**DSN, "service": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]}}), "Service"
    )
    assert service["spec"]["ipFamilyPolicy"] == "PreferDualStack" and service["spec"]["ipFamilies"] == ["IPv6", "IPv4"]
    assert "ipFamilyPolicy" not in find(render(DSN), "Service")["spec"]  # the cluster's default


def test_the_grace_period_check_uses_the_sidecars_own_stop_figure() -> None:
    """The chart's stopSeconds is drain.STOP_SECONDS: exactly drain + shutdown + it is refused, + 1 passes."""
    import helm_python as helm

    lifecycle = {"drainMinSeconds": 3, "shutdownTimeoutSeconds": 4}
    edge = 3 + 4 + STOP_SECONDS
    with pytest.raises(helm.HelmError) as info:
        render({**DSN, "lifecycle": lifecycle, "terminationGracePeriodSeconds": int(edge)})
    assert f"+ {STOP_SECONDS:g} ({edge:g})" in str(info.value)
    assert pod_spec(render({**DSN, "lifecycle": lifecycle, "terminationGracePeriodSeconds": int(edge) + 1}))
