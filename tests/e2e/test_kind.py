"""End-to-end on a kind cluster (run by deploy/kind/e2e.sh / make e2e, and the GitHub workflow).

Skipped where no kind cluster and container engine exist, e.g. on the development machines and
CI of this project, which cannot run containers. The order matters: the last test stops the
primary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rbac import CAN_I, can_i_args
from tests.harness import wait_for

pytestmark = pytest.mark.e2e

NAMESPACE = os.environ.get("FASTERDB_E2E_NAMESPACE", "")
CONTEXT = os.environ.get("FASTERDB_E2E_CONTEXT", "")  # kind's admin (a client certificate)
CLI_CONTEXT = os.environ.get("FASTERDB_E2E_CLI_CONTEXT", "")  # the ServiceAccount bound to the chart's Role
CLI_ACCOUNT = os.environ.get("FASTERDB_E2E_CLI_ACCOUNT", "")
TOKEN = "e2e-admin-token-0123456789"
STANDALONE = "app.kubernetes.io/name=fasterdb-sidecar"
APPLICATION = "app.kubernetes.io/name=example-app"

if not (NAMESPACE and CONTEXT and CLI_CONTEXT and shutil.which("kind") and shutil.which("docker")):
    pytest.skip(
        "needs a kind cluster and a container engine (run deploy/kind/e2e.sh, or make e2e); "
        "none can run on this machine",
        allow_module_level=True,
    )


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    """``fasterdb-admin`` as a user runs it: the installed command, from the venv the tests run in."""
    command = str(Path(sys.executable).parent / "fasterdb-admin")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=120)


def kubectl(*args: str, context: str = CONTEXT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--context", context, "-n", NAMESPACE, *args], capture_output=True, text=True, timeout=120
    )


def api(name: str) -> Any:
    """A client of the Kubernetes API (e.g. ``CoreV1Api``) as kind's admin, built after loading the
    kubeconfig: a client built before takes the library's default configuration (localhost)."""
    from kubernetes import client, config

    config.load_kube_config(context=CONTEXT)
    return getattr(client, name)()


def core() -> Any:
    return api("CoreV1Api")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    wait_for(condition, timeout, 1.0, what)  # the suite's one polling helper, at the cluster's pace


def pods(selector: str) -> list[Any]:
    return list(core().list_namespaced_pod(NAMESPACE, label_selector=selector).items)


def all_ready(selector: str) -> bool:
    found = pods(selector)
    return bool(found) and all(
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in found
    )


def none_ready(selector: str) -> bool:
    return not any(
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods(selector)
    )


def restarts(selector: str) -> int:
    return sum(
        c.restart_count
        for p in pods(selector)
        for c in [*(p.status.container_statuses or []), *(p.status.init_container_statuses or [])]
    )


@pytest.mark.parametrize("selector", [STANDALONE, APPLICATION])
def test_cli_through_the_pod_proxy_as_the_service_account(selector: str) -> None:
    for command in (["health"], ["pool-stats"], ["check-replicas", "--crit-lag-bytes", "1GB"]):
        result = admin(*command, "--kube", "--context", CLI_CONTEXT, "-l", selector, "-o", "json")
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_cli_as_the_clusters_admin_by_client_certificate() -> None:
    result = admin("health", "--kube", "-n", NAMESPACE, "--context", CONTEXT, "-o", "json")
    assert result.returncode == 0, (result.stdout, result.stderr)


def test_the_service_account_may_do_nothing_else() -> None:
    who = f"system:serviceaccount:{NAMESPACE}:{CLI_ACCOUNT}"
    for (verb, resource, subresource), expected in CAN_I.items():
        answer = kubectl(*can_i_args(verb, resource, subresource, who)).stdout.strip()
        assert answer == expected, (verb, resource, subresource, answer)


def test_budget_from_the_deployment_as_the_service_account() -> None:
    result = admin("budget", "--kube", "--context", CLI_CONTEXT, "--deployment", "shop-example-app", "-o", "json")
    assert result.returncode in (0, 1, 2), (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert document["pods"] == 2 and document["surge"] == 1  # replicas 2, the default maxSurge 25 % rounded up
    assert document["source"].startswith("Deployment shop-example-app: replicas 2")


def test_a_transfer_through_a_port_forward() -> None:
    forward = subprocess.Popen(
        ["kubectl", "--context", CONTEXT, "-n", NAMESPACE, "port-forward", "svc/e2e-fasterdb-sidecar", "18080:8080"],
        stdout=subprocess.DEVNULL,
    )
    try:
        base = ["--url", "http://127.0.0.1:18080", "--token", TOKEN]
        wait_until(lambda: admin("health", *base).returncode == 0, 30, "the port-forward answers")
        assert admin("db", "migrate", *base).returncode == 0
        assert admin("accounts", "seed", "--count", "2", "--balance", "100", *base).returncode == 0
        result = admin("transfer", "--from", "1", "--to", "2", "--amount", "1.50", *base, "-o", "json")
        assert result.returncode == 0, result.stderr
    finally:
        forward.terminate()


def test_the_application_starts_after_its_native_sidecar() -> None:
    for pod in pods(APPLICATION):
        sidecar = next(s for s in pod.status.init_container_statuses if s.name == "fasterdb-sidecar")
        app = next(s for s in pod.status.container_statuses if s.name == "app")
        assert sidecar.started and sidecar.state.running is not None  # still running: a native sidecar
        assert pod.spec.init_containers[0].restart_policy == "Always"
        assert app.state.running.started_at >= sidecar.state.running.started_at
        # No secret in any container's environment: only the *_FILE paths.
        for container in [*pod.spec.init_containers, *pod.spec.containers]:
            assert not [e for e in container.env or [] if e.value_from is not None]


def test_pods_turn_unready_without_the_primary_and_ready_again_when_it_returns() -> None:
    apps = api("AppsV1Api")
    assert all_ready(STANDALONE) and all_ready(APPLICATION)
    before = restarts(STANDALONE) + restarts(APPLICATION)

    def scale(replicas: int) -> None:
        apps.patch_namespaced_stateful_set_scale("pg-primary", NAMESPACE, {"spec": {"replicas": replicas}})

    scale(0)
    try:
        # Two failed probes 5 s apart, plus the primary's own shutdown.
        wait_until(lambda: none_ready(STANDALONE) and none_ready(APPLICATION), 90, "every pod unready")
    finally:
        scale(1)
    wait_until(lambda: all_ready(STANDALONE) and all_ready(APPLICATION), 240, "every pod ready again")
    # Unready, never restarted: liveness and startup do not depend on the database.
    assert restarts(STANDALONE) + restarts(APPLICATION) == before
