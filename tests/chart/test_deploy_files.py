"""What can be checked of deploy/ without a container engine: scripts (shellcheck), manifests."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    ROOT / "deploy" / "kind" / "e2e.sh",
    ROOT / "deploy" / "scripts" / "bootstrap.sh",
    ROOT / "deploy" / "scripts" / "install-promtool.sh",
    ROOT / ".ci" / "run",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")  # bootstrap.sh puts it in the venv (tests/conftest.py: PATH)
    assert shellcheck, "shellcheck is not installed: run deploy/scripts/bootstrap.sh"
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
    assert 'FASTERDB_HOST="::"' in final  # both address families, as the chart renders it
    # The throwaway local cluster (devtools) and the tests never reach the image.
    copied = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line]
    assert not any(path.startswith(("devtools", "tests")) for path in copied), copied


def test_the_kind_setup_is_pinned_and_reads_like_a_first_run_would_need() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    steps = {s.get("uses", s.get("name")).split("@")[0]: s for s in workflow["jobs"]["kind"]["steps"]}
    assert steps["helm/kind-action"]["with"]["version"].startswith("v")
    assert steps["azure/setup-helm"]["with"]["version"].startswith("v3.")
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


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore pattern as Docker's patternmatcher reads it (``*``, ``?``, ``**``)."""
    parts = []
    for i, segment in enumerate(pattern.strip("/").split("/")):
        if segment == "**":
            parts.append("(?:[^/]+/)*" if i < pattern.count("/") else ".*")
            continue
        text = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment)
        parts.append(text + "/")
    return re.compile("^" + "".join(parts).removesuffix("/") + "$")


def _in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends ``path``: the last rule matching it or one of its parent folders decides."""
    excluded = False
    parents = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/"))]
    for negated, regex in rules:
        if negated != excluded:
            continue
        if regex.match(path) or any(regex.match(parent) for parent in parents):
            excluded = not negated
    return not excluded


def test_the_build_context_is_exactly_what_the_dockerfile_copies() -> None:
    rules = [
        (line.startswith("!"), _dockerignore_regex(line.removeprefix("!")))
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = [
        source.rstrip("/")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    ]
    assert copied == ["pyproject.toml", "README.md", "kit", "service", "cli"]  # both distributions
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    # What a working copy also holds: venvs, checkov in .tools (hundreds of MB), caches, builds.
    untracked = [
        ".venv/bin/python",
        ".tools/checkov/lib/python3.11/site-packages/checkov/main.py",
        ".tools/prometheus-2.53.4/promtool",
        "kit/fasterdb.egg-info/PKG-INFO",
        "service/__pycache__/app.cpython-311.pyc",
        "cli/commands/__pycache__/inject.cpython-311.pyc",
        "kit/build/lib/fasterdb/__init__.py",
        ".mypy_cache/3.11/cache.db",
        "helm/fasterdb-sidecar/charts/x.tgz",
    ]
    sent = {path for path in tracked + untracked if _in_build_context(path, rules)}
    under_copy = {p for p in tracked if any(p == c or p.startswith(c + "/") for c in copied)}
    assert sent == under_copy, (sorted(sent - under_copy), sorted(under_copy - sent))
    assert "kit/pyproject.toml" in sent and "service/main.py" in sent and "cli/main.py" in sent


@pytest.fixture
def unprivileged() -> Iterator[tuple[list[str], Path]]:
    """A command prefix that runs as a user without root (nobody, when the tests run as root) and a
    scratch folder it can write; PATH then holds only basic tools: no promtool, no sudo, no apt-get."""
    scratch = Path(tempfile.mkdtemp(prefix="fasterdb-nonroot-"))
    scratch.chmod(0o777)
    tools = scratch / "path"
    tools.mkdir()
    for name in ("bash", "sh", "env", "uname", "id", "curl", "sha256sum", "tar", "gzip", "mkdir", "mktemp", "mv"):
        found = shutil.which(name)
        assert found, f"{name} is needed to test install-promtool.sh"
        (tools / name).symlink_to(found)
    for name in ("rm", "ln", "dirname", "cat", "chmod"):
        (tools / name).symlink_to(shutil.which(name) or f"/bin/{name}")
    prefix = ["env", "-i", f"PATH={tools}", "HOME=/nonexistent"]
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *prefix]
    try:
        yield prefix, scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fake_release(scratch: Path) -> tuple[Path, str]:
    """A release archive laid out as Prometheus' (prometheus-V.linux-ARCH/promtool) and its SHA-256."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    folder = scratch / "release" / f"prometheus-2.53.4.linux-{arch}"
    folder.mkdir(parents=True)
    (folder / "promtool").write_text("#!/bin/sh\necho 'promtool, version 2.53.4 (test double)'\n")
    (folder / "promtool").chmod(0o755)
    archive = scratch / "release.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    archive.chmod(0o644)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


@pytest.mark.parametrize("checksum_matches", [True, False], ids=["pinned-checksum", "wrong-checksum"])
def test_promtool_installs_without_root_only_with_the_pinned_checksum(
    unprivileged: tuple[list[str], Path], checksum_matches: bool
) -> None:
    prefix, scratch = unprivileged
    archive, sha256 = _fake_release(scratch)
    tools, bin_dir = scratch / "tools", scratch / "venv-bin"
    pinned = sha256 if checksum_matches else "0" * 64
    env = [f"FASTERDB_PROMETHEUS_URL=file://{archive}", f"FASTERDB_PROMETHEUS_SHA256={pinned}"]
    script = str(ROOT / "deploy" / "scripts" / "install-promtool.sh")
    result = subprocess.run(
        [*prefix, *env, script, str(tools), str(bin_dir)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    if checksum_matches:
        assert (bin_dir / "promtool").resolve() == tools / "prometheus-2.53.4" / "promtool"
        ran = subprocess.run([str(bin_dir / "promtool")], capture_output=True, text=True, check=True)
        assert "test double" in ran.stdout
    else:
        assert "does not have the pinned SHA-256" in result.stderr and "refused" in result.stderr
        assert not (bin_dir / "promtool").exists() and not (tools / "prometheus-2.53.4").exists()
        assert "install the package prometheus" in result.stderr


def test_the_pinned_promtool_release_is_checked_for_both_architectures() -> None:
    script = (ROOT / "deploy" / "scripts" / "install-promtool.sh").read_text()
    assert re.findall(r"sha256=([0-9a-f]{64})", script) and len(set(re.findall(r"sha256=([0-9a-f]{64})", script))) == 2
    assert "sha256sum --check" in script and "prometheus-$version.linux-$arch" in script
    bootstrap = (ROOT / "deploy" / "scripts" / "bootstrap.sh").read_text()
    assert 'install-promtool.sh" "$tools" "$venv/bin"' in bootstrap and "sudo -n" in bootstrap
