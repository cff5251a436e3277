"""``budget --kube --deployment``: what a Deployment may run at most, read from the Kubernetes API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .client import CliError
from .kube import KubeTarget, api_error, api_host, connect


@dataclass(frozen=True)
class DeploymentFleet:
    """What a Deployment may run at most: its replicas or its autoscaler's maximum, plus the surge."""

    name: str
    replicas: int
    hpa_max: int | None
    surge: int
    selector: str

    @property
    def pods(self) -> int:
        """Pods at most outside a rollout."""
        return max(self.replicas, self.hpa_max or 0)


def _surge(strategy: Any, pods: int) -> int:
    """maxSurge of a RollingUpdate (an int or a percentage, rounded up; default 25 %); 0 for Recreate."""
    if strategy is not None and strategy.type == "Recreate":
        return 0
    value = getattr(getattr(strategy, "rolling_update", None), "max_surge", None)
    if value is None:
        value = "25%"
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%") and text[:-1].isdigit():
        return -(-pods * int(text[:-1]) // 100)  # ceiling, as the Deployment controller rounds
    if text.isdigit():
        return int(text)
    raise CliError(f"the Deployment's maxSurge {text!r} is neither a number nor a percentage")


def deployment_fleet(target: KubeTarget, name: str) -> DeploymentFleet:
    """Read Deployment ``name``, its maxSurge and the HorizontalPodAutoscaler that scales it."""
    client, namespace = connect(target)
    try:
        deployment = client.AppsV1Api().read_namespaced_deployment(name, namespace, _request_timeout=target.timeout)
    except Exception as exc:
        raise api_error(f"read Deployment {name} in namespace {namespace}", exc, api_host(client)) from None
    try:
        hpas = client.AutoscalingV2Api().list_namespaced_horizontal_pod_autoscaler(
            namespace, _request_timeout=target.timeout
        )
    except Exception as exc:
        raise api_error(f"list HorizontalPodAutoscalers in namespace {namespace}", exc, api_host(client)) from None
    hpa_max = None
    for hpa in hpas.items:
        ref = hpa.spec.scale_target_ref
        if ref.kind == "Deployment" and ref.name == name:
            hpa_max = int(hpa.spec.max_replicas)
    replicas = int(deployment.spec.replicas if deployment.spec.replicas is not None else 1)
    labels = (deployment.spec.selector.match_labels or {}) if deployment.spec.selector else {}
    if not labels:
        raise CliError(f"Deployment {name} selects its pods without matchLabels; ask a sidecar with --url instead")
    pods = max(replicas, hpa_max or 0)
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return DeploymentFleet(name, replicas, hpa_max, _surge(deployment.spec.strategy, pods), selector)
