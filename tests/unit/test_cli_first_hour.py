"""The CLI as a new user meets it: help with examples, --version, and one line for every failure.

Every command is run against an unreachable sidecar, a broken kubeconfig and bad input files; each
must answer with one line on stderr and a documented exit code, never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from devtools.cluster import free_port
from fasterdb_admin.main import app
from fasterdb_sidecar import __version__
from tests.harness import run_cli

# Every leaf command with the least arguments it needs.
COMMANDS: dict[str, list[str]] = {
    "health": [],
    "check-replicas": [],
    "pool-stats": [],
    "activity": [],
    "slots": [],
    "wraparound": [],
    "budget": ["--pods", "3"],
    "transfer": ["--from", "1", "--to", "2", "--amount", "1.00", "--token", "t" * 20],
    "jobs status": ["1", "--token", "t" * 20],
    "jobs list": ["--token", "t" * 20],
    "jobs cancel": ["1", "--token", "t" * 20],
    "db migrate": ["--token", "t" * 20],
    "accounts seed": ["--count", "3", "--balance", "1.00", "--token", "t" * 20],
    "accounts show": ["1", "--token", "t" * 20],
}
KUBE_COMMANDS = {"health": [], "check-replicas": [], "pool-stats": [], "budget": ["--deployment", "shop"]}


def leaf_commands() -> list[str]:
    group = typer.main.get_command(app)
    names = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):  # a group (Typer vendors click: no isinstance)
            names += [f"{name} {sub}" for sub in command.commands]
        else:
            names.append(name)
    return sorted(names)


def test_every_command_is_covered_here() -> None:
    assert sorted([*COMMANDS, "inject", "uninject", "jobs submit"]) == leaf_commands()


@pytest.mark.parametrize("command", leaf_commands())
def test_every_help_has_an_example_and_readable_argument_names(command: str) -> None:
    result = run_cli(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout, command
    for leftover in (r"<int range>", r"<float range>", r"<path>", r"\bINTEGER\b", r"\bFLOAT\b", r"\bTEXT\b"):
        assert not re.search(leftover, result.stdout), (command, leftover)


def test_version_completion_and_an_uncut_command_list() -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"fasterdb-admin {__version__}"
    top = run_cli("--help")
    assert "--install-completion" in top.stdout and "Start here" in top.stdout
    listing = top.stdout.split("Commands:", 1)[1]
    assert "..." not in listing  # every summary whole


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreachable_sidecar_is_one_line_and_unknown(command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(*command.split(), *COMMANDS[command], "--url", url, "--timeout", "2")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "cannot reach the sidecar" in result.stderr


@pytest.mark.parametrize("command", sorted(KUBE_COMMANDS))
def test_a_broken_kubeconfig_is_one_line(command: str, tmp_path: Path) -> None:
    broken = tmp_path / "config"
    broken.write_text("apiVersion: v1\nclusters: [\n")
    result = run_cli(*command.split(), *KUBE_COMMANDS[command], "--kube", env={"KUBECONFIG": str(broken)})
    assert result.returncode == 3 and "is not valid YAML (line 3)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    wrong_context = tmp_path / "ok"
    wrong_context.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: abc}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    args = [*command.split(), *KUBE_COMMANDS[command], "--kube", "--context", "nope"]
    result = run_cli(*args, env={"KUBECONFIG": str(wrong_context)})
    assert result.returncode == 3 and "has no context 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\xff\xfe1\x00,\x002\x00", "is UTF-16 text: save it as CSV UTF-8"),
        (b"1,2,1.00\n\xe9t\xe9,2,1.00\n", ":2: not UTF-8 text"),
        (b"\xef\xbb\xbffrom_account,to_account,amount\r\n1,2,1.00\r\nx,2,1.00\r\n", ":3: account ids must be whole"),
        (b"1,2\n", ":1: expected from_account,to_account,amount"),
        (b"# nothing\n\n", "no transfers found"),
        (b"1,2,1.00\n" * 100_001, "has 100,001 transfers; a job takes at most 100,000"),
    ],
    ids=["utf16", "latin1", "bom-crlf-bad-id", "short-row", "empty", "too-many"],
)
def test_bad_csv_files_are_one_line_with_the_line_number(content: bytes, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "payouts.csv"
    path.write_bytes(content)
    result = run_cli("jobs", "submit", str(path), "--url", f"http://127.0.0.1:{free_port()}", "--token", "t" * 20)
    assert result.returncode == 3 and needle in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_csv_file_and_a_bom_file_that_reads(tmp_path: Path) -> None:
    from fasterdb_admin.commands.jobs import read_csv

    result = run_cli("jobs", "submit", str(tmp_path / "nope.csv"), "--token", "t" * 20)
    assert result.returncode == 3 and "cannot read" in result.stderr
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbffrom_account,to_account,amount,idempotency_key\r\n1,2,1.50,a\r\n\r\n3,4,2,b\r\n")
    items = read_csv(excel)
    assert items.items == [
        {"from_account": 1, "to_account": 2, "amount": "1.50", "idempotency_key": "a"},
        {"from_account": 3, "to_account": 4, "amount": "2", "idempotency_key": "b"},
    ]
    assert items.lines == [2, 4]
    message = "invalid request body: Expected `str` of length <= 200 - at `$.items[1].idempotency_key`"
    assert (
        items.explain(message) == f"{excel}:4: invalid request body: Expected `str` of length <= 200 (idempotency_key)"
    )
    assert items.explain("item 0: amount must be positive") == f"{excel}:2: amount must be positive"
