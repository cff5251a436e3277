"""``--kube``: find the sidecar pods with the Kubernetes API and ask each through the pod proxy.

The kubernetes client is imported only here, and only when ``--kube`` is used. RBAC needed in the
namespace, exactly: ``list`` on ``pods`` and ``get`` on ``pods/proxy`` (the chart offers this as an
optional Role: ``rbac.create=true``). Pods are found by the selector and then by their container
named ``fasterdb-sidecar`` (a regular container, or a native sidecar among the init containers).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import yaml
from rich.console import Group
from rich.text import Text

from .client import CliError, SidecarClient, known_failure
from .commands.inject import CONTAINER, PORT_NAME
from .exitcodes import Exit, worst
from .options import KubeTarget
from .output import emit

One = Callable[[SidecarClient], tuple[Exit, Any]]


def pod_proxy_client(configuration: Any, namespace: str, pod: str, port: int, timeout: float) -> SidecarClient:
    """A SidecarClient whose base URL is the API server's pod proxy for ``pod``:``port``.

    TLS settings and credentials come from the kubernetes client's Configuration (kubeconfig or
    in-cluster), so whatever `kubectl` can reach, this can: a bearer token, or a client
    certificate (kind and kubeadm clusters authenticate their admin that way).
    """
    headers = {
        entry["key"]: entry["value"]
        for entry in configuration.auth_settings().values()
        if entry.get("in") == "header" and entry.get("value")
    }
    base = f"{configuration.host.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy"
    verify = ssl_context(configuration) if base.startswith("https:") else False
    http = httpx.Client(base_url=base, timeout=timeout, verify=verify, headers=headers)
    return SidecarClient(base, None, timeout, http=http)


def ssl_context(configuration: Any) -> ssl.SSLContext:
    """The TLS context of a kubernetes Configuration: its CA (or none), and its client certificate.

    Built here because httpx 0.28 ignores ``cert=`` when ``verify`` is a path: every request then
    arrives as ``system:anonymous`` and the API server answers 403.
    """
    try:
        if configuration.verify_ssl:
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
            if getattr(configuration, "assert_hostname", None) is False:
                context.check_hostname = False
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"the kubeconfig's TLS files cannot be used: {exc}") from None
    return context


def connect(target: KubeTarget) -> tuple[Any, str]:
    """The kubernetes client module, configured (kubeconfig or in-cluster), and the namespace to use."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise CliError("--kube needs the kubernetes client: pip install 'fasterdb-ops[kube]'") from None
    # The client reads KUBECONFIG once, at import; read it now (it may list several files).
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    have_kubeconfig = any(os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p)
    try:
        if not have_kubeconfig:
            raise FileNotFoundError(kubeconfig)
        config.load_kube_config(config_file=kubeconfig, context=target.context)
        contexts = config.list_kube_config_contexts(config_file=kubeconfig)
        namespace = target.namespace or _context_namespace(contexts, target.context)
    except (ConfigException, FileNotFoundError, TypeError, ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, yaml.YAMLError):
            mark = getattr(exc, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark is not None else ""
            raise CliError(f"the kubeconfig {kubeconfig} is not valid YAML{line}") from None
        if have_kubeconfig:
            raise CliError(f"cannot use the kubeconfig {kubeconfig}: {_kube_reason(exc, target.context)}") from None
        try:
            config.load_incluster_config()
        except ConfigException:
            raise CliError("no Kubernetes configuration: no kubeconfig and not running in a cluster") from None
        namespace = target.namespace or _incluster_namespace()
    return client, namespace


def _kube_reason(exc: Exception, context: str | None) -> str:
    text = _first_line(exc)
    if context and context in text:
        return f"it has no context {context!r} (kubectl config get-contexts lists them)"
    return text


# Beyond the sidecar client's: what only talking to the Kubernetes API runs into.
API_FAILURES = (
    ("timed out", "timed out"),
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted (check the kubeconfig's CA)"),
)


def _api_error(what: str, exc: Exception, host: str = "") -> CliError:
    status = getattr(exc, "status", None)
    if not status:
        # urllib3's MaxRetryError and friends: say what failed to connect, in words.
        text = str(getattr(exc, "reason", None) or exc)
        words = known_failure(text, API_FAILURES)
        why = f": {words}" if words else f" ({type(exc).__name__})"
        server = f" {host}" if host else ""
        return CliError(f"cannot {what}: the Kubernetes API server{server} did not answer{why}")
    hint = {401: " (not authenticated)", 403: " (forbidden: see the chart's rbac.create)", 404: " (not found)"}
    return CliError(f"cannot {what}: HTTP {status}{hint.get(status, '')}")


def discover(target: KubeTarget) -> dict[str, SidecarClient]:
    """The running pods matching the selector, each with a client through the pod proxy."""
    client, namespace = connect(target)
    api = client.CoreV1Api()
    try:
        pods = api.list_namespaced_pod(namespace, label_selector=target.selector, _request_timeout=target.timeout)
    except Exception as exc:
        raise _api_error(f"list pods in namespace {namespace}", exc, _host(client)) from None
    configuration = client.Configuration.get_default_copy()
    clients = {}
    for pod in pods.items:
        container = _sidecar(pod)
        if pod.status.phase != "Running" or container is None:
            continue  # pods of the selection without the sidecar (or not running) are not asked
        name = pod.metadata.name
        clients[name] = pod_proxy_client(configuration, namespace, name, _port(container), target.timeout)
    if not clients:
        raise CliError(
            f"no running pods with a {CONTAINER} container match {target.selector!r} in namespace {namespace}"
        )
    return clients


def _host(client: Any) -> str:
    return str(client.Configuration.get_default_copy().host)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _context_namespace(contexts: tuple[list[dict[str, Any]], dict[str, Any]], name: str | None) -> str:
    """The namespace of kubeconfig context ``name`` (the current one when None), or "default"."""
    available, current = contexts
    chosen = next((c for c in available if c.get("name") == name), None) if name else current
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _sidecar(pod: Any) -> Any | None:
    """The pod's fasterdb-sidecar container: a regular one, or a native sidecar (an init container)."""
    for container in [*(pod.spec.containers or []), *(pod.spec.init_containers or [])]:
        if container.name == CONTAINER:
            return container
    return None


def _port(container: Any) -> int:
    for port in container.ports or []:
        if port.name in (PORT_NAME, "http"):
            return int(port.container_port)
    return 8080


def _incluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip()
    except OSError:
        return "default"


def across_pods(clients: dict[str, SidecarClient], one: One) -> tuple[Exit, list[dict[str, Any]]]:
    """Run ``one`` against every pod; the exit code is the worst of them (an error counts UNKNOWN)."""
    results, codes = [], []
    for pod, client in sorted(clients.items()):
        try:
            code, body = one(client)
            results.append({"pod": pod, "exit": code.name, "result": body})
        except CliError as exc:
            code = exc.code
            results.append({"pod": pod, "exit": code.name, "error": exc.message})
        codes.append(code)
    return worst(codes), results


def emit_across_pods(
    results: list[dict[str, Any]],
    output: str,
    table: Callable[[Any], Any],
    nagios: Callable[[list[dict[str, Any]]], str] | None = None,
    as_json: Callable[[Any], Any] | None = None,
) -> None:
    """JSON: {"pods": [...]}; table: the command's own table per pod, under the pod's name;
    nagios: the one line ``nagios(results)`` builds."""

    def render(data: dict[str, Any]) -> Group:
        parts: list[Any] = []
        for entry in data["pods"]:
            style = {"OK": "green", "WARNING": "yellow"}.get(entry["exit"], "bold red")
            parts.append(Text(f"pod {entry['pod']}: {entry['exit']}", style=style))
            parts.append(table(entry["result"]) if "result" in entry else Text(entry["error"], style="red"))
        return Group(*parts)

    def document(data: dict[str, Any]) -> dict[str, Any]:
        project = as_json or (lambda result: result)
        return {"pods": [{**e, "result": project(e["result"])} if "result" in e else e for e in data["pods"]]}

    emit({"pods": results}, output, render, (lambda data: nagios(data["pods"])) if nagios else None, document)


def run_across_pods(
    target: KubeTarget,
    one: One,
    output: str,
    table: Callable[[Any], Any],
    nagios: Callable[[list[dict[str, Any]]], str] | None = None,
    as_json: Callable[[Any], Any] | None = None,
) -> Exit:
    """--kube: run ``one`` on every sidecar pod, print one section per pod, return the worst code."""
    clients = discover(target)
    try:
        code, results = across_pods(clients, one)
    finally:
        for client in clients.values():
            client.close()
    emit_across_pods(results, output, table, nagios, as_json)
    return code


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
        raise _api_error(f"read Deployment {name} in namespace {namespace}", exc, _host(client)) from None
    try:
        hpas = client.AutoscalingV2Api().list_namespaced_horizontal_pod_autoscaler(
            namespace, _request_timeout=target.timeout
        )
    except Exception as exc:
        raise _api_error(f"list HorizontalPodAutoscalers in namespace {namespace}", exc, _host(client)) from None
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
