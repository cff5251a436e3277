"""``--kube``: find the sidecar pods with the Kubernetes API and ask them through the pod proxy.

Checks ask every pod (``pod_clients``); a command that cannot run across pods asks one ready pod and
says which (``one_pod``). The admin endpoints cannot be reached this way at all: the API server
removes the ``Authorization`` header (the admin token) once it has authenticated the request, so
those commands say how to reach a sidecar with ``kubectl port-forward`` (``port_forward_advice``).

The kubernetes client is imported only here, and only when ``--kube`` is used. RBAC needed in the
namespace, exactly: ``list`` on ``pods`` and ``get`` on ``pods/proxy`` (the chart offers this as an
optional Role: ``rbac.create=true``). Pods are found by the selector and then by their container
named ``fasterdb-sidecar`` (a regular container, or a native sidecar among the init containers).
"""

from __future__ import annotations

import os
import shlex
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from .client import CliError, SidecarClient, known_failure
from .commands.inject import CONTAINER, PORT_NAME
from .output import diagnose


@dataclass(frozen=True)
class KubeTarget:
    """Where to look for sidecar pods (``--kube``)."""

    namespace: str | None
    selector: str
    context: str | None
    timeout: float


@dataclass(frozen=True)
class SidecarPod:
    """A running pod with a fasterdb-sidecar container: its name, the sidecar's port and readiness."""

    name: str
    port: int
    ready: bool


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
    return SidecarClient(base, None, timeout, http=http, shown=f"pod {namespace}/{pod}")


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


def api_error(what: str, exc: Exception, host: str = "") -> CliError:
    status = getattr(exc, "status", None)
    if not status:
        # urllib3's MaxRetryError and friends: say what failed to connect, in words.
        text = str(getattr(exc, "reason", None) or exc)
        words = known_failure(text)
        why = f": {words}" if words else f" ({type(exc).__name__})"
        server = f" {host}" if host else ""
        return CliError(f"cannot {what}: the Kubernetes API server{server} did not answer{why}")
    hint = {401: " (not authenticated)", 403: " (forbidden: see the chart's rbac.create)", 404: " (not found)"}
    return CliError(f"cannot {what}: HTTP {status}{hint.get(status, '')}")


def find_pods(target: KubeTarget) -> tuple[Any, str, list[SidecarPod]]:
    """The kubernetes Configuration, the namespace, and the running pods with a sidecar matching the selector."""
    client, namespace = connect(target)
    api = client.CoreV1Api()
    try:
        pods = api.list_namespaced_pod(namespace, label_selector=target.selector, _request_timeout=target.timeout)
    except Exception as exc:
        raise api_error(f"list pods in namespace {namespace}", exc, api_host(client)) from None
    found = []
    for pod in pods.items:
        container = _sidecar(pod)
        if pod.status.phase == "Running" and container is not None:  # others of the selection are not asked
            found.append(SidecarPod(pod.metadata.name, _port(container), _ready(pod)))
    if not found:
        raise CliError(
            f"no running pods with a {CONTAINER} container match {target.selector!r} in namespace {namespace}"
        )
    return client.Configuration.get_default_copy(), namespace, sorted(found, key=lambda p: p.name)


@contextmanager
def pod_clients(target: KubeTarget) -> Iterator[dict[str, SidecarClient]]:
    """A client for every sidecar pod, through the pod proxy, closed at the end of the block."""
    configuration, namespace, pods = find_pods(target)
    with ExitStack() as stack:
        yield {
            p.name: stack.enter_context(pod_proxy_client(configuration, namespace, p.name, p.port, target.timeout))
            for p in pods
        }


def _chosen(pods: list[SidecarPod]) -> SidecarPod:
    """The first ready pod, else the first running one (its sidecar then says what is wrong)."""
    return next((p for p in pods if p.ready), pods[0])


def one_pod(target: KubeTarget) -> tuple[str, SidecarClient]:
    """A client for one sidecar pod (a ready one when there is one), said on stderr."""
    configuration, namespace, pods = find_pods(target)
    pod = _chosen(pods)
    state = "ready" if pod.ready else "not ready: none is"
    diagnose(
        f"--kube: asking pod {pod.name} in namespace {namespace} ({state}; {len(pods)} sidecar "
        f"pod{'s' if len(pods) > 1 else ''} found) through the API server's pod proxy"
    )
    return pod.name, pod_proxy_client(configuration, namespace, pod.name, pod.port, target.timeout)


def port_forward_advice(target: KubeTarget) -> str:
    """Why a command of the admin endpoints cannot use --kube, and the command that reaches a sidecar."""
    _, namespace, pods = find_pods(target)
    pod = _chosen(pods)
    context = ["--context", target.context] if target.context else []
    forward = ["kubectl", *context, "-n", namespace, "port-forward", f"pod/{pod.name}", f"18080:{pod.port}"]
    return (
        "--kube cannot carry the admin token (the API server's pod proxy removes the Authorization header): "
        f"run `{shlex.join(forward)}` and use --url http://127.0.0.1:18080"
    )


def api_host(client: Any) -> str:
    """The API server's address, for messages."""
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


def _ready(pod: Any) -> bool:
    """Whether the pod's sidecar container is ready (its readiness is /health/db)."""
    statuses = [*(pod.status.container_statuses or []), *(pod.status.init_container_statuses or [])]
    return any(s.name == CONTAINER and s.ready for s in statuses)


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
