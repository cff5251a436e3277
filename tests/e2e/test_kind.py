"""End-to-end on a kind cluster (run by deploy/kind/e2e.sh / make e2e, and the GitHub workflow).

Skipped where no kind cluster and container engine exist, e.g. on the development machines and
CI of this project, which cannot run containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.e2e

NAMESPACE = os.environ.get("FASTERDB_E2E_NAMESPACE", "")
CONTEXT = os.environ.get("FASTERDB_E2E_CONTEXT", "")
TOKEN = "e2e-admin-token-0123456789"

if not (NAMESPACE and CONTEXT and shutil.which("kind") and shutil.which("docker")):
    pytest.skip(
        "needs a kind cluster and a container engine (run deploy/kind/e2e.sh, or make e2e); "
        "none can run on this machine",
        allow_module_level=True,
    )


def admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args], capture_output=True, text=True, timeout=120
    )


def kube_args() -> list[str]:
    return ["--kube", "-n", NAMESPACE, "--context", CONTEXT]


def test_cli_through_the_pod_proxy() -> None:
    for command in (["health"], ["pool-stats"], ["check-replicas", "--crit-lag-bytes", "1GB"]):
        result = admin(*command, *kube_args(), "-o", "json")
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_a_transfer_through_a_port_forward() -> None:
    forward = subprocess.Popen(
        ["kubectl", "--context", CONTEXT, "-n", NAMESPACE, "port-forward", "svc/e2e-fasterdb-sidecar", "18080:8080"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        base = ["--url", "http://127.0.0.1:18080", "--token", TOKEN]
        assert admin("db", "migrate", *base).returncode == 0
        assert admin("accounts", "seed", "--count", "2", "--balance", "100", *base).returncode == 0
        result = admin("transfer", "--from", "1", "--to", "2", "--amount", "1.50", *base, "-o", "json")
        assert result.returncode == 0, result.stderr
    finally:
        forward.terminate()


def test_pod_turns_unready_when_the_primary_dies_and_comes_back() -> None:
    from kubernetes import client, config

    config.load_kube_config(context=CONTEXT)
    v1 = client.CoreV1Api()
    selector = "app.kubernetes.io/name=fasterdb-sidecar"

    def ready() -> bool:
        pods = v1.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        return all(c.ready for p in pods for c in p.status.container_statuses or [] if c.name == "fasterdb-sidecar")

    assert ready()
    restarts_before = sum(
        c.restart_count
        for p in v1.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        for c in p.status.container_statuses
    )
    v1.delete_namespaced_pod("pg-primary-0", NAMESPACE, grace_period_seconds=0)
    deadline = time.monotonic() + 60
    while ready():
        assert time.monotonic() < deadline, "sidecar stayed ready without its primary"
        time.sleep(1)
    deadline = time.monotonic() + 180
    while not ready():
        assert time.monotonic() < deadline, "sidecar did not become ready again"
        time.sleep(2)
    restarts_after = sum(
        c.restart_count
        for p in v1.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        for c in p.status.container_statuses
    )
    assert restarts_after == restarts_before  # unready, never restarted: liveness ignores the database
