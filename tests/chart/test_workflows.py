"""The GitHub workflows: linted by actionlint (with shellcheck on every `run:`), pinned, and the
release workflow's publishing checked step by step; its version check runs here as on a tag."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fasterdb_admin.commands.inject import IMAGE_REPOSITORY
from tests.chart.conftest import CHART, ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
OWNER = IMAGE_REPOSITORY.split("/")[1]  # ghcr.io/<owner>/fasterdb-sidecar


def workflow(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True; the workflow's own name for it is "on".
    data: dict[Any, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A job's steps by action (without its version) or by name."""
    return {(s.get("uses") or s["name"]).split("@")[0]: s for s in job["steps"]}


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    found, shellcheck = shutil.which("actionlint"), shutil.which("shellcheck")
    assert found and shellcheck, "actionlint and shellcheck come with bootstrap.sh (the venv's bin)"
    return subprocess.run(
        [found, "-no-color", f"-shellcheck={shellcheck}", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_passes_with_shellcheck_on_every_run_script(tmp_path: Path) -> None:
    assert {p.name for p in WORKFLOWS} == {"e2e.yml", "release.yml"}
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    # actionlint knows popular actions' inputs and outputs by major version (a release pin such as
    # v6.0.3 is not in its table): lint a copy on the majors too, so every `with:` is checked.
    majors = tmp_path / ".github" / "workflows"
    majors.mkdir(parents=True)
    for path in WORKFLOWS:
        (majors / path.name).write_text(re.sub(r"(uses:\s*\S+@v\d+)\.\d+\.\d+", r"\1", path.read_text()))
    result = actionlint(*sorted(majors.iterdir()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_what_it_should(tmp_path: Path) -> None:
    """Not a silent pass: an unknown input, an undefined step output and an unquoted variable fail."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: docker/build-push-action@v7\n        with:\n          platform: linux/arm64\n"
        "      - run: echo ${{ steps.nope.outputs.x }} $HOME/$1\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'input "platform"' in result.stdout and "steps.nope" in result.stdout and "SC2086" in result.stdout


def test_every_action_is_pinned_to_a_release() -> None:
    for path in WORKFLOWS:
        uses = re.findall(r"uses:\s*(\S+)", path.read_text())
        assert uses
        for action in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", action), (path.name, action)


def test_the_release_publishes_signed_multi_arch_image_and_chart_with_least_privilege() -> None:
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert release["permissions"] == {}
    tests, publish = release["jobs"]["tests"], release["jobs"]["publish"]
    assert tests["permissions"] == {"contents": "read"} and "make test" in tests["steps"][-1]["run"]
    assert publish["needs"] == "tests"
    assert publish["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    # The workflow's own token, nothing else: no stored secrets, no keys (cosign is keyless).
    assert set(re.findall(r"secrets\.(\w+)", text)) == {"GITHUB_TOKEN"}
    by = steps(publish)
    assert by["docker/login-action"]["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }
    assert {"docker/setup-qemu-action", "docker/setup-buildx-action"} <= set(by)
    build = by["docker/build-push-action"]["with"]
    assert build["platforms"] == "linux/amd64,linux/arm64" and build["push"] is True
    assert build["file"] == "deploy/Dockerfile" and build["context"] == "."
    assert build["sbom"] is True and build["provenance"] == "mode=max"
    assert by["anchore/sbom-action"]["with"]["format"] == "spdx-json"
    signing = by["Sign the image and attest its SBOM (keyless)"]["run"]
    assert 'cosign sign --yes "$IMAGE"' in signing and "cosign attest --yes --type spdxjson" in signing
    chart = by["Package and push the chart, then sign it (keyless)"]["run"]
    assert 'helm push "dist/fasterdb-sidecar-$VERSION.tgz" "oci://$CHARTS"' in chart
    assert 'cosign sign --yes "$CHARTS/fasterdb-sidecar@$digest"' in chart
    assert "id-token: write" in text and "COSIGN_PASSWORD" not in text and "--key" not in text


def run_version_check(tmp_path: Path, tag: str, owner: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The publish job's first step, run as on GitHub (bash -e, GITHUB_OUTPUT a file)."""
    script = steps(workflow("release.yml")["jobs"]["publish"])[
        "Versions agree with the tag; the chart's default image is the one published here"
    ]["run"]
    output = tmp_path / "output"
    output.write_text("")
    env = dict(os.environ, TAG=tag, OWNER=owner, GITHUB_OUTPUT=str(output))
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    pairs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return result, pairs


def chart_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["version"])


def test_the_release_version_check_runs_as_on_a_tag(tmp_path: Path) -> None:
    version = chart_version()
    ok, outputs = run_version_check(tmp_path, f"v{version}", OWNER.title())  # owners may be capitalised
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert outputs == {
        "version": version,
        "image": f"ghcr.io/{OWNER}/fasterdb-sidecar",
        "charts": f"ghcr.io/{OWNER}/charts",
    }
    wrong_tag, _ = run_version_check(tmp_path, "v9.9.9", OWNER)
    assert wrong_tag.returncode == 1 and f"tag v9.9.9, but a version in Chart.yaml or pyproject.toml is {version}" in (
        wrong_tag.stdout
    )
    fork, _ = run_version_check(tmp_path, f"v{version}", "someone-else")
    assert fork.returncode == 1 and "publishes ghcr.io/someone-else/fasterdb-sidecar" in fork.stdout


def test_the_published_names_are_the_defaults_everywhere() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert values["image"]["repository"] == IMAGE_REPOSITORY == f"ghcr.io/{OWNER}/fasterdb-sidecar"
    assert chart["version"] == chart["appVersion"]  # the image tag the chart defaults to
    readme = (ROOT / "README.md").read_text()
    assert f"helm install my-db-sidecar oci://ghcr.io/{OWNER}/charts/fasterdb-sidecar" in readme
    assert f"repository: oci://ghcr.io/{OWNER}/charts" in readme
    assert "registry.example/charts" not in readme + (CHART / "README.md").read_text()


@pytest.mark.parametrize("name", ["e2e.yml", "release.yml"])
def test_checkouts_keep_no_credentials_and_pip_is_cached(name: str) -> None:
    for job in workflow(name)["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if step.get("uses", "").startswith("actions/setup-python@"):
                assert step["with"]["cache"] == "pip"
