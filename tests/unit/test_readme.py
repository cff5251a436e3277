"""The README points at things that exist: files and folders of this checkout, images, make targets."""

from __future__ import annotations

import re

from tests.harness import ROOT

README = (ROOT / "README.md").read_text()
TOP = ("kit/", "service/", "cli/", "devtools/", "deploy/", "helm/", "tests/", "docs/")


def test_every_path_it_cites_exists() -> None:
    cited = set(re.findall(r"`([^`\s]+)`", README))  # `tests/unit/test_x.py`
    cited |= set(re.findall(r"\]\(([^)#\s]+)\)", README))  # [text](path) and ![image](path)
    cited |= set(re.findall(r'<img src="([^"]+)"', README))
    paths = {c.split("#")[0].split("::")[0] for c in cited if c.startswith(TOP)}
    assert len(paths) > 15, paths  # the check sees the README's citations at all
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_every_make_target_it_names_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"(?:`|^)make ([a-z][a-z0-9-]*)", README, re.M))  # as code, not "make a job"
    assert {"run", "test"} <= named and named <= targets, named - targets
