"""``--kube``: find the sidecar pods with the Kubernetes API and ask each through the pod proxy.

The kubernetes client is imported only here, and only when ``--kube`` is used. RBAC needed in the
namespace: ``get``/``list`` on ``pods`` and ``get``/``create`` on ``pods/proxy`` (the chart offers
this as an optional Role: ``rbac.create=true``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text

from cli.client import CliError, Reply, SidecarClient
from cli.exitcodes import Exit, worst
from cli.output import emit

DEFAULT_SELECTOR = "app.kubernetes.io/name=fasterdb-sidecar"
CONTAINER = "fasterdb-sidecar"


@dataclass(frozen=True)
class KubeTarget:
    """Where to look for sidecar pods."""

    namespace: str | None
    selector: str
    context: str | None
    timeout: float


class PodProxyClient(SidecarClient):
    """A SidecarClient whose requests go through the API server's pod proxy."""

    def __init__(self, api: Any, namespace: str, pod: str, port: int, timeout: float) -> None:
        self.url = f"kube://{namespace}/{pod}:{port}"
        self.token = None
        self.timeout = timeout
        self._api, self._namespace, self._pod, self._port = api, namespace, pod, port

    def close(self) -> None:
        """Nothing to close: the API client is shared."""

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        admin: bool = False,
    ) -> Reply:
        """GET/POST through /api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}."""
        from kubernetes.client.exceptions import ApiException

        query = [
            (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (params or {}).items() if v is not None
        ]
        resource = f"/api/v1/namespaces/{self._namespace}/pods/{self._pod}:{self._port}/proxy{path}"
        try:
            response = self._api.api_client.call_api(
                resource,
                method,
                query_params=query,
                body=json_body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=self.timeout,
            )
            status, raw = response.status, response.data
        except ApiException as exc:
            status, raw = exc.status, exc.body
        except Exception as exc:  # urllib3 connection and timeout errors
            raise CliError(f"pod {self._pod}: the Kubernetes API did not answer ({type(exc).__name__})") from None
        try:
            body = json.loads(raw)
        except (TypeError, ValueError):
            raise CliError(f"pod {self._pod}: non-JSON answer (HTTP {status}) from {path}") from None
        return Reply(int(status), body)


def discover(target: KubeTarget) -> dict[str, PodProxyClient]:
    """The running pods matching the selector, each with a client through the pod proxy."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise CliError("--kube needs the kubernetes client: pip install 'fasterdb-ops[kube]'") from None
    try:
        config.load_kube_config(context=target.context)
        namespace = target.namespace or config.list_kube_config_contexts()[1]["context"].get("namespace", "default")
    except (ConfigException, FileNotFoundError, TypeError):
        try:
            config.load_incluster_config()
        except ConfigException:
            raise CliError("no Kubernetes configuration: no kubeconfig and not running in a cluster") from None
        namespace = target.namespace or _incluster_namespace()
    api = client.CoreV1Api()
    try:
        pods = api.list_namespaced_pod(namespace, label_selector=target.selector, _request_timeout=target.timeout)
    except Exception as exc:
        status = getattr(exc, "status", None)
        raise CliError(
            f"cannot list pods in namespace {namespace}: {'HTTP ' + str(status) if status else type(exc).__name__}"
        ) from None
    clients = {}
    for pod in pods.items:
        if pod.status.phase != "Running":
            continue
        clients[pod.metadata.name] = PodProxyClient(api, namespace, pod.metadata.name, _port(pod), target.timeout)
    if not clients:
        raise CliError(f"no running pods match {target.selector!r} in namespace {namespace}")
    return clients


def _port(pod: Any) -> int:
    for container in pod.spec.containers:
        if container.name == CONTAINER:
            for port in container.ports or []:
                if port.name == "http":
                    return int(port.container_port)
    return 8080


def _incluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip()
    except OSError:
        return "default"


def across_pods(
    clients: dict[str, SidecarClient],
    one: Callable[[SidecarClient], tuple[Exit, dict[str, Any]]],
) -> tuple[Exit, list[dict[str, Any]]]:
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


def emit_across_pods(results: list[dict[str, Any]], output: str, table: Callable[[Any], Any]) -> None:
    """JSON: {"pods": [...]}; table: the command's own table per pod, under the pod's name."""

    def render(data: dict[str, Any]) -> Group:
        parts: list[Any] = []
        for entry in data["pods"]:
            style = {"OK": "green", "WARNING": "yellow"}.get(entry["exit"], "bold red")
            parts.append(Text(f"pod {entry['pod']}: {entry['exit']}", style=style))
            parts.append(table(entry["result"]) if "result" in entry else Text(entry["error"], style="red"))
        return Group(*parts)

    emit({"pods": results}, output, render)
