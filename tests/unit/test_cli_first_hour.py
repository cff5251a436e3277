"""The CLI as a new user meets it: help with examples, --version, and one line for every failure.

Every command is run with the shared options, against an unreachable sidecar, a broken kubeconfig
and bad input files; each must answer with one line on stderr and a documented exit code, never a
traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from devtools.cluster import free_port
from fasterdb_admin.exitcodes import Exit
from fasterdb_admin.job_file import MAX_LISTED, read_job_file
from fasterdb_admin.main import app
from fasterdb_sidecar import __version__
from tests.harness import run_cli

TOKEN = "t" * 20
CHECKS: dict[str, list[str]] = {
    "health": [],
    "check-replicas": [],
    "pool-stats": [],
    "activity": [],
    "slots": [],
    "wraparound": [],
    "budget": ["--pods", "3"],
}
# The commands of the admin endpoints (they need the token) with the least arguments they need.
ADMIN: dict[str, list[str]] = {
    "transfer": ["--from", "1", "--to", "2", "--amount", "1.00"],
    "jobs submit": ["-"],  # the CSV on stdin
    "jobs status": ["1"],
    "jobs list": [],
    "jobs cancel": ["1"],
    "db migrate": [],
    "accounts seed": ["--count", "3", "--balance", "1.00"],
    "accounts show": ["1"],
}
COMMANDS = CHECKS | ADMIN
# What a script passes to every command: every shared option (-o where the command prints).
SHARED = ["--token", TOKEN, "--timeout", "2", "-n", "apps", "-l", "app=shop", "--context", "ctx", "-o", "json"]


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
    assert sorted([*COMMANDS, "inject", "uninject"]) == leaf_commands()


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
def test_every_command_takes_the_shared_options_and_an_unreachable_sidecar_is_one_line(command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(*command.split(), *COMMANDS[command], "--url", url, *SHARED, stdin="1,2,1.00\n")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr == f"fasterdb-admin: cannot reach the sidecar at {url}: connection refused\n"
    assert result.stdout == ""


def test_inject_takes_the_shared_options_and_says_that_kube_does_nothing_there() -> None:
    workload = "kind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: a}]}}}\n"
    result = run_cli("inject", "-f", "-", "--url", "http://x", *SHARED[:-2], stdin=workload)
    assert result.returncode == 0 and "fasterdb-sidecar" in result.stdout and "--kube" not in result.stderr
    result = run_cli("inject", "-f", "-", "--kube", stdin=workload)
    assert result.returncode == 0 and "inject reads files and asks no sidecar or cluster: --kube has no effect" in (
        result.stderr
    )


@pytest.mark.parametrize("command", sorted(ADMIN))
def test_no_token_is_a_configuration_error_before_anything_is_sent(command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the CLI must not even try
    result = run_cli(*command.split(), *ADMIN[command], "--url", url, stdin="1,2,1.00\n")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr == (
        "fasterdb-admin: this command needs the sidecar's admin token: set FASTERDB_ADMIN_TOKEN or use --token\n"
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_broken_kubeconfig_is_one_line(command: str, tmp_path: Path) -> None:
    args = [*command.split(), *COMMANDS[command], "--token", TOKEN, "--kube"]
    if command == "budget":
        args = ["budget", "--deployment", "shop", "--kube"]
    broken = tmp_path / "config"
    broken.write_text("apiVersion: v1\nclusters: [\n")
    result = run_cli(*args, env={"KUBECONFIG": str(broken)}, stdin="1,2,1.00\n")
    assert result.returncode == 3 and "is not valid YAML (line 3)" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    wrong_context = tmp_path / "ok"
    wrong_context.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: abc}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    result = run_cli(*args, "--context", "nope", env={"KUBECONFIG": str(wrong_context)}, stdin="1,2,1.00\n")
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
    result = run_cli("jobs", "submit", str(path), "--url", f"http://127.0.0.1:{free_port()}", "--token", TOKEN)
    assert result.returncode == 3 and needle in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_csv_file_and_a_bom_file_that_reads(tmp_path: Path) -> None:
    result = run_cli("jobs", "submit", str(tmp_path / "nope.csv"), "--token", TOKEN)
    assert result.returncode == 3 and "cannot read" in result.stderr
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbffrom_account,to_account,amount,idempotency_key\r\n1,2,1.50,a\r\n\r\n3,4,2,b\r\n")
    items = read_job_file(excel)
    assert items.items == [
        {"from_account": 1, "to_account": 2, "amount": "1.50", "idempotency_key": "a"},
        {"from_account": 3, "to_account": 4, "amount": "2", "idempotency_key": "b"},
    ]
    assert items.lines == [2, 4]


def test_every_bad_line_is_listed_by_its_line_number_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "payouts.csv"
    path.write_text("from_account,to_account,amount\n1,2,1.00\nx,2,1.00\n1,2\n0,2,1.00\n1,2,3,%s\n" % ("k" * 201))
    result = run_cli("jobs", "submit", str(path), "--token", TOKEN, "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        f"fasterdb-admin: {path}: 4 bad lines; nothing was submitted",
        f"  {path}:3: account ids must be whole numbers, not 'x', '2'",
        f"  {path}:4: expected from_account,to_account,amount[,idempotency_key]",
        f"  {path}:5: from_account: Expected `int` >= 1",
        f"  {path}:6: idempotency_key: Expected `str` of length <= 200",
    ]
    path.write_text("1,2,1.00\n" + "a,b,c\n" * (MAX_LISTED + 5))
    lines = run_cli("jobs", "submit", str(path), "--token", TOKEN).stderr.splitlines()
    assert lines[0].endswith(f"{MAX_LISTED + 5} bad lines; nothing was submitted") and len(lines) == MAX_LISTED + 2
    assert lines[1].startswith(f"  {path}:2: ") and lines[-1] == f"  ... and 5 more (the first {MAX_LISTED} are listed)"


def test_the_sidecars_item_errors_are_mapped_to_the_files_lines(tmp_path: Path) -> None:
    path = tmp_path / "payouts.csv"
    path.write_text("# payouts\nfrom_account,to_account,amount\n1,2,1.00\n\n2,2,1.00\n3,4,1.001\n")
    job = read_job_file(path)
    assert job.lines == [3, 5, 6]
    one = job.explain("item 2: amount has more than 2 decimals")
    assert one is not None and (one.code, one.message) == (
        Exit.CRITICAL,
        f"job refused: {path}:6: amount has more than 2 decimals",
    )
    several = job.explain(
        "item 1: from_account and to_account must differ; item 2: amount has more than 2 decimals (and 7 more)"
    )
    assert several is not None and several.code == Exit.CRITICAL
    assert several.message == f"job refused: {path}: 9 bad lines; nothing was submitted"
    assert several.details == [
        f"{path}:5: from_account and to_account must differ",
        f"{path}:6: amount has more than 2 decimals",
        "... and 7 more that the sidecar counted without naming them",
    ]
    decoded = job.explain("invalid request body: Expected `str` of length <= 200 - at `$.items[0].idempotency_key`")
    assert decoded is not None and decoded.message == (
        f"job refused: {path}:3: Expected `str` of length <= 200 (idempotency_key)"
    )
    assert job.explain("the primary database is unavailable: timeout") is None


def test_a_finished_jobs_errors_name_the_files_lines(tmp_path: Path) -> None:
    from rich.console import Console

    from fasterdb_admin.commands.jobs import job_table

    path = tmp_path / "payouts.csv"
    path.write_text("1,2,1.00\n\n3,1,500,c\n")
    job = {
        "job_id": 7,
        "status": "succeeded",
        "total": 2,
        "applied": 1,
        "duplicates": 0,
        "failed": 1,
        "dry_run": False,
        "throttle_reason": None,
        "updated_at": "2026-11-29T22:12:47.909Z",
        "errors": [{"seq": 1, "idempotency_key": "c", "code": "insufficient_funds", "message": "not enough"}],
    }
    console = Console(width=200, record=True)
    console.print(job_table(job, read_job_file(path).where))
    text = console.export_text()
    assert f"{path}:3" in text and "insufficient_funds" in text and "2026-11-29 22:12:47 UTC (" in text
