"""``--kube``: find the sidecar pods with the Kubernetes API and ask each through the pod proxy.

The kubernetes client is imported only here, and only when ``--kube`` is used. RBAC needed in the
namespace: ``get``/``list`` on ``pods`` and ``get``/``create`` on ``pods/proxy`` (the chart offers
this as an optional Role: ``rbac.create=true``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Group
from rich.text import Text

from cli.client import CliError, SidecarClient
from cli.exitcodes import Exit, worst
from cli.options import KubeTarget
from cli.output import emit

CONTAINER = "fasterdb-sidecar"
One = Callable[[SidecarClient], tuple[Exit, Any]]


def pod_proxy_client(configuration: Any, namespace: str, pod: str, port: int, timeout: float) -> SidecarClient:
    """A SidecarClient whose base URL is the API server's pod proxy for ``pod``:``port``.

    TLS settings and credentials come from the kubernetes client's Configuration (kubeconfig or
    in-cluster), so whatever `kubectl` can reach, this can.
    """
    headers = {
        entry["key"]: entry["value"]
        for entry in configuration.auth_settings().values()
        if entry.get("in") == "header" and entry.get("value")
    }
    verify: Any = bool(configuration.verify_ssl)
    if verify and configuration.ssl_ca_cert:
        verify = configuration.ssl_ca_cert
    cert = (configuration.cert_file, configuration.key_file) if configuration.cert_file else None
    base = f"{configuration.host.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy"
    http = httpx.Client(base_url=base, timeout=timeout, verify=verify, cert=cert, headers=headers)
    return SidecarClient(base, None, timeout, http=http)


def discover(target: KubeTarget) -> dict[str, SidecarClient]:
    """The running pods matching the selector, each with a client through the pod proxy."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        raise CliError("--kube needs the kubernetes client: pip install 'fasterdb-ops[kube]'") from None
    try:
        config.load_kube_config(context=target.context)
        namespace = target.namespace or _context_namespace(config.list_kube_config_contexts(), target.context)
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
    configuration = client.Configuration.get_default_copy()
    clients = {}
    for pod in pods.items:
        if pod.status.phase != "Running":
            continue
        name = pod.metadata.name
        clients[name] = pod_proxy_client(configuration, namespace, name, _port(pod), target.timeout)
    if not clients:
        raise CliError(f"no running pods match {target.selector!r} in namespace {namespace}")
    return clients


def _context_namespace(contexts: tuple[list[dict[str, Any]], dict[str, Any]], name: str | None) -> str:
    """The namespace of kubeconfig context ``name`` (the current one when None), or "default"."""
    available, current = contexts
    chosen = next((c for c in available if c.get("name") == name), None) if name else current
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


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
