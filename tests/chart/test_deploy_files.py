"""What can be checked of deploy/ without a container engine: scripts (shellcheck), manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "deploy" / "kind" / "e2e.sh", ROOT / "deploy" / "scripts" / "bootstrap.sh", ROOT / ".ci" / "run"]


def _shellcheck() -> str | None:
    found = shutil.which("shellcheck")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "shellcheck"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
        found = shutil.which("shellcheck")
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.fail("shellcheck is not installed and could not be installed with apt-get")
    result = subprocess.run([shellcheck, "-S", "style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("kube_version", ["1.25.0", "1.37.0"])
def test_kind_manifests_validate(kube_version: str) -> None:
    documents = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kind" / "postgres.yaml").read_text()) if d]
    assert {d["kind"] for d in documents} == {"Secret", "ConfigMap", "Service", "StatefulSet"}
    for document in documents:
        kubernetes_validate.validate(document, kube_version, strict=True)
    cluster = yaml.safe_load((ROOT / "deploy" / "kind" / "cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster" and cluster["apiVersion"].startswith("kind.x-k8s.io/")


def test_dockerfile_runs_as_non_root_and_has_no_build_tools_in_the_final_stage() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    final = text.split("\nFROM ")[-1]
    assert "USER 10001:10001" in final and 'ENTRYPOINT ["fasterdb-sidecar"]' in final
    assert "gcc" not in final and "apt-get install" not in final
    assert "COPY --from=build /opt/fasterdb /opt/fasterdb" in final
    # The throwaway local cluster (devtools) and the tests never reach the image.
    copied = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line]
    assert not any(path.startswith(("devtools", "tests")) for path in copied), copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "devtools" in ignored and "tests" in ignored


def test_the_kind_setup_is_pinned_and_reads_like_a_first_run_would_need() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    steps = {s.get("uses", s.get("name")): s for s in workflow["jobs"]["kind"]["steps"]}
    assert steps["helm/kind-action@v1"]["with"]["version"].startswith("v")
    assert steps["azure/setup-helm@v4"]["with"]["version"].startswith("v3.")
    for job in workflow["jobs"].values():
        python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
        assert python["with"]["cache"] == "pip"
    node = yaml.safe_load((ROOT / "deploy" / "kind" / "cluster.yaml").read_text())["nodes"][0]
    assert "@sha256:" in node["image"]  # the node image by digest, not whatever "latest" is
    statefulsets = [
        d
        for d in yaml.safe_load_all((ROOT / "deploy" / "kind" / "postgres.yaml").read_text())
        if d and d["kind"] == "StatefulSet"
    ]
    primary = next(s for s in statefulsets if s["metadata"]["name"] == "pg-primary")
    assert primary["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"  # survives scale to 0
    for statefulset in statefulsets:
        probe = statefulset["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
        assert probe[:3] == ["pg_isready", "-h", "127.0.0.1"]  # TCP, not the init server's socket
    script = (ROOT / "deploy" / "kind" / "e2e.sh").read_text()
    assert 'kubectl -n "$namespace" create token' in script and "rbac.subjects[0].kind=ServiceAccount" in script


def test_make_run_installs_the_runtime_only_and_the_bootstrap_checks_python() -> None:
    makefile = (ROOT / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "FASTERDB_EXTRAS= deploy/scripts/bootstrap.sh" in run and "bootstrap" not in run.split("\n", 1)[0]
    script = (ROOT / "deploy" / "scripts" / "bootstrap.sh").read_text()
    assert "sys.version_info < (3, 11)" in script and "import venv, ensurepip" in script
    assert 'pip install -q -e "$root/kit" -e "${root}"' in script  # no extras: the runtime alone


def test_a_too_old_python_is_refused_with_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Python 3.9.2'; exit 0; fi\nexit 1\n")
    fake.chmod(0o755)
    result = subprocess.run(
        [str(ROOT / "deploy" / "scripts" / "bootstrap.sh")],
        env=dict(os.environ, PYTHON=str(fake), FASTERDB_VENV=str(tmp_path / "venv")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs Python 3.11 or newer" in result.stderr and "Python 3.9.2" in result.stderr
