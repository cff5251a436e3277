"""The chart's NetworkPolicy, evaluated flow by flow with Kubernetes' NetworkPolicy semantics.

A small evaluator of the rendered policy (selectors, namespace selectors, ipBlocks, named ports):
each documented flow must be allowed, and the ones nobody documented must not be. Named ports
resolve as kindnet's and Calico's policy controllers resolve them: in ``containers`` only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.chart.conftest import find, render

NAMESPACE = "apps"
API_SERVER = "172.18.0.2"
PG = "10.96.4.7"


@dataclass(frozen=True)
class Pod:
    """A pod as a NetworkPolicy sees it: labels, its namespace's labels, an IP, named ports."""

    labels: dict[str, str]
    namespace: str = NAMESPACE
    ip: str = "10.244.1.9"
    ports: dict[str, int] = field(default_factory=dict)
    from_node: bool = False  # the kubelet, on the pod's own node

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels; {} selects everything."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def peer_matches(peer: dict[str, Any], other: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(c) for c in block.get("except", [])
        )
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
        return "podSelector" not in peer or selects(peer["podSelector"], other.labels)
    return other.namespace == policy_namespace and selects(peer.get("podSelector"), other.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, target: Pod, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None or wanted == port or (isinstance(wanted, str) and target.ports.get(wanted) == port):
            return True
    return False


def allowed(policy: dict[str, Any], source: Pod, destination: Pod, port: int, protocol: str = "TCP") -> bool:
    """Whether ``policy`` lets ``source`` reach ``destination:port`` (both directions considered)."""
    spec, namespace = policy["spec"], policy["metadata"]["namespace"]
    types = spec.get("policyTypes", ["Ingress"])
    # Egress of the source, when the policy selects it.
    if source.namespace == namespace and selects(spec["podSelector"], source.labels) and "Egress" in types:
        if not any(
            port_matches(rule.get("ports"), destination, port, protocol)
            and (not rule.get("to") or any(peer_matches(p, destination, namespace) for p in rule["to"]))
            for rule in spec.get("egress") or []
        ):
            return False
    # Ingress of the destination, when the policy selects it; the pod's node always gets in.
    if destination.namespace == namespace and selects(spec["podSelector"], destination.labels) and "Ingress" in types:
        if source.from_node:
            return True
        return any(
            port_matches(rule.get("ports"), destination, port, protocol)
            and (not rule.get("from") or any(peer_matches(p, source, namespace) for p in rule["from"]))
            for rule in spec.get("ingress") or []
        )
    return True


def pod_of(objects: list[dict[str, Any]]) -> Pod:
    template = find(objects, "Deployment")["spec"]["template"]
    spec = template["spec"]
    ports = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p}
    return Pod(dict(template["metadata"]["labels"]), ports=ports, ip="10.244.1.20")


APP = {
    "name": "app",
    "image": "registry.example/shop@sha256:" + "a" * 64,
    "ports": [{"name": "web", "containerPort": 8000}],
}
BASE = {
    "database": {"primaryDsn": "postgresql://a@h/d"},
    "networkPolicy": {"enabled": True, "apiServerCidrs": [f"{API_SERVER}/32"]},
}


@pytest.mark.parametrize("with_app", [False, True], ids=["sidecar-alone", "with-app"])
def test_every_documented_flow_is_allowed_and_nothing_else(with_app: bool) -> None:
    values = dict(BASE, app=APP) if with_app else BASE
    objects = render(values, namespace=NAMESPACE)
    policy = find(objects, "NetworkPolicy")
    sidecar = pod_of(objects)
    port = find(objects, "Service")["spec"]["ports"][0]["port"]
    neighbour = Pod({"app": "billing"})
    prometheus = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring", ip="10.244.2.5")
    stranger = Pod({"app": "x"}, namespace="other", ip="10.244.3.3")
    kubelet = Pod({}, namespace="-", ip="172.18.0.3", from_node=True)
    api_server = Pod({}, namespace="-", ip=API_SERVER)  # not a pod: the control plane
    elsewhere = Pod({}, namespace="-", ip="203.0.113.9")
    postgres = Pod({}, namespace="db", ip=PG)
    helm_test = Pod(dict(find(objects, "Pod", name_suffix="-test-health")["metadata"]["labels"]))
    internet = Pod({}, namespace="-", ip="198.51.100.1")

    # Documented flows.
    assert allowed(policy, kubelet, sidecar, port)  # probes
    assert allowed(policy, prometheus, sidecar, port)  # scrape from the monitoring namespace
    assert allowed(policy, api_server, sidecar, port)  # fasterdb-admin --kube through the pod proxy
    assert allowed(policy, neighbour, sidecar, port)  # clients in the namespace (the CLI, jobs)
    assert not selects(policy["spec"]["podSelector"], helm_test.labels)  # the test pod is not restricted
    assert allowed(policy, helm_test, sidecar, port)  # helm test: fasterdb-admin health via the Service
    assert allowed(policy, sidecar, postgres, 5432)  # to PostgreSQL
    assert allowed(policy, sidecar, Pod({}, namespace="kube-system", ip="10.96.0.10"), 53, "UDP")  # DNS
    # Not documented: refused.
    assert not allowed(policy, stranger, sidecar, port)
    assert not allowed(policy, elsewhere, sidecar, port)
    assert not allowed(policy, neighbour, sidecar, 9999)
    if with_app:
        # The application's own port is open (to everyone by default), and its outbound traffic
        # is not cut off: the policy selects the whole pod.
        assert allowed(policy, stranger, sidecar, 8000)
        assert allowed(policy, sidecar, internet, 443)
    else:
        assert not allowed(policy, sidecar, internet, 443)  # the sidecar alone talks only to PostgreSQL


def test_narrowing_the_app_and_restricting_its_egress() -> None:
    values = dict(
        BASE,
        app=APP,
        networkPolicy={
            **BASE["networkPolicy"],
            "appIngressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
            "restrictEgress": True,
            "extraEgress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": 443}]}],
            "prometheus": None,
        },
    )
    objects = render(values, namespace=NAMESPACE)
    policy = find(objects, "NetworkPolicy")
    sidecar = pod_of(objects)
    assert allowed(policy, Pod({}, namespace="ingress", ip="10.244.9.9"), sidecar, 8000)
    assert not allowed(policy, Pod({}, namespace="other", ip="10.244.3.3"), sidecar, 8000)
    assert allowed(policy, sidecar, Pod({}, namespace="-", ip="198.51.100.1"), 443)
    assert not allowed(policy, sidecar, Pod({}, namespace="-", ip="203.0.113.1"), 443)
    prometheus = Pod({}, namespace="monitoring", ip="10.244.2.5")
    assert not allowed(policy, prometheus, sidecar, 8080)  # prometheus: null


@pytest.mark.parametrize("with_app", [False, True], ids=["sidecar-alone", "with-app"])
def test_the_pod_proxy_through_konnectivity_agents_gets_in(with_app: bool) -> None:
    """GKE and AKS: the API server reaches pods through agents in kube-system, not from its own address."""
    values = {**BASE, "networkPolicy": {"enabled": True}} | ({"app": APP} if with_app else {})
    policy = find(render(values, namespace=NAMESPACE), "NetworkPolicy")
    sidecar = pod_of(render(values, namespace=NAMESPACE))
    gke = Pod({"k8s-app": "konnectivity-agent"}, namespace="kube-system", ip="10.8.0.12")
    aks = Pod({"app": "konnectivity-agent"}, namespace="kube-system", ip="10.244.0.17")
    assert allowed(policy, gke, sidecar, 8080) and allowed(policy, aks, sidecar, 8080)
    assert not allowed(policy, Pod({"k8s-app": "kube-dns"}, namespace="kube-system"), sidecar, 8080)
    assert not allowed(policy, Pod({"app": "konnectivity-agent"}, namespace="tenant"), sidecar, 8080)
    assert not allowed(policy, gke, sidecar, 9999)
    # Where the pod proxy connects directly, the agents' rule can go.
    direct = {**values, "networkPolicy": {"enabled": True, "apiServerPeers": []}}
    assert not allowed(find(render(direct, namespace=NAMESPACE), "NetworkPolicy"), gke, sidecar, 8080)


def test_an_ipv6_control_plane() -> None:
    values = {**BASE, "networkPolicy": {"enabled": True, "apiServerCidrs": ["fd00:10::/64"]}}
    objects = render(values, namespace=NAMESPACE)
    policy = find(objects, "NetworkPolicy")
    sidecar = Pod(pod_of(objects).labels, ports=pod_of(objects).ports, ip="fd00:244::20")
    assert allowed(policy, Pod({}, namespace="-", ip="fd00:10::2"), sidecar, 8080)
    assert not allowed(policy, Pod({}, namespace="-", ip="fd00:99::2"), sidecar, 8080)
