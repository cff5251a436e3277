"""What pip installs: the kit claims one import name, fasterdb-ops no generic ones, devtools none.

Builds both wheels from the checkout with pip (as a user or the Dockerfile does), installs them
into a fresh virtualenv without their dependencies, and reads what landed in site-packages.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ROOT


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two wheels, built by pip from a copy of the checkout (setuptools builds in the tree)."""
    out, src = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("pyproject.toml", "README.md", "kit", "service", "cli"):
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, ignore=skip)
        else:
            shutil.copy(ROOT / part, src / part)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src / "kit"), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    found = {p.name.split("-")[0]: p for p in out.glob("*.whl")}
    assert set(found) == {"fasterdb", "fasterdb_ops"}, found
    return found


def _top_level(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {name.split("/")[0] for name in zf.namelist() if not name.split("/")[0].endswith(".dist-info")}


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(meta))


def test_the_kit_claims_one_import_name_and_needs_three_packages(wheels: dict[str, Path]) -> None:
    assert _top_level(wheels["fasterdb"]) == {"fasterdb"}
    requires = {
        r.split(">")[0].split("=")[0].split("<")[0].strip()
        for r in _metadata(wheels["fasterdb"]).get_all("Requires-Dist") or []
    }
    assert requires == {"faster-api-web", "asyncpg", "msgspec"}


def test_the_sidecar_and_cli_install_under_their_own_names(wheels: dict[str, Path]) -> None:
    names = _top_level(wheels["fasterdb_ops"])
    assert names == {"fasterdb_sidecar", "fasterdb_admin"}
    assert not names & {"service", "cli", "devtools", "tests"}


def _sources(folder: str) -> Iterator[str]:
    for path in (ROOT / folder).rglob("*.py"):
        yield str(path.relative_to(ROOT / folder))


def test_every_module_of_the_checkout_is_in_the_wheel(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["fasterdb_ops"]) as zf:
        shipped = set(zf.namelist())
    for folder, package in (("service", "fasterdb_sidecar"), ("cli", "fasterdb_admin")):
        missing = [f for f in _sources(folder) if f"{package}/{f}" not in shipped]
        assert not missing, f"{folder}/ modules missing from the wheel (pyproject's package list): {missing}"
    # The status page's style and script are package data, read at run time.
    data = [*(ROOT / "service").rglob("*.css"), *(ROOT / "service").rglob("*.js")]
    assets = [p.relative_to(ROOT / "service").as_posix() for p in data]
    assert assets and not [a for a in assets if f"fasterdb_sidecar/{a}" not in shipped], assets


def test_a_fresh_virtualenv_gets_exactly_these_names(wheels: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # Without a pip of its own (ensurepip took most of this test's time): this interpreter's pip
    # installs into it (pip --python), as the venv's own pip would.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index"]
        + list(map(str, wheels.values())),
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = {
        p.name
        for p in site.iterdir()
        if not p.name.endswith((".dist-info", ".pth"))
        and p.name not in {"pip", "_distutils_hack", "setuptools", "pkg_resources"}
        and p.name != "__pycache__"
    }
    assert ours == {"fasterdb", "fasterdb_sidecar", "fasterdb_admin"}
    scripts = {p.name for p in (venv / "bin").iterdir()}
    assert {"fasterdb-sidecar", "fasterdb-admin"} <= scripts
