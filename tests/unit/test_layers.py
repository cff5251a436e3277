"""The import graph, read from the source: no circles, and data flowing edge -> domain -> SQL.

Every module of the kit (``kit/fasterdb``), the sidecar (``service/`` as ``fasterdb_sidecar``) and
the CLI (``cli/`` as ``fasterdb_admin``) is parsed; relative imports are resolved; imports inside
functions (lazy ones) count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.harness import ROOT

PACKAGES = {"fasterdb": ROOT / "kit" / "fasterdb", "fasterdb_sidecar": ROOT / "service", "fasterdb_admin": ROOT / "cli"}
# Feature packages of the sidecar: domain code beside its SQL.
FEATURES = ("health", "replication", "catalog", "ledger", "jobs", "metrics")
EDGE = tuple(f"fasterdb_sidecar.{m}" for m in ("routes", "http", "app", "main", "__main__", "drain"))
# Value types a SQL module may build from rows (they hold no behaviour that reaches back up).
VALUE_TYPES = (".sql", ".model", ".money")


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_no_circles() -> None:
    graph = _graph()
    # A package's face (__init__) re-exports its modules; it is not a step of a cycle.
    faces = {name for name, path in _modules().items() if path.name == "__init__.py"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node] - faces):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def _under(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_layers() -> None:
    problems = []
    for module, targets in _graph().items():
        for target in targets:
            if _under(module, "fasterdb") and not _under(target, "fasterdb"):
                problems.append(f"the kit imports {target} ({module})")
            if _under(module, "fasterdb_admin") and _under(target, "fasterdb_sidecar"):
                problems.append(f"the CLI imports the sidecar: {module} -> {target}")
            if _under(module, "fasterdb_sidecar") and not _under(module, EDGE) and _under(target, EDGE):
                problems.append(f"{module} imports the HTTP edge {target}")
            is_sql = module.endswith(".sql") or _under(module, "fasterdb_sidecar.db")
            feature = _under(target, tuple(f"fasterdb_sidecar.{f}" for f in FEATURES))
            if is_sql and feature and not target.endswith(VALUE_TYPES):
                problems.append(f"SQL module {module} imports domain code {target}")
    assert not problems, "\n".join(sorted(problems))


def test_sql_only_in_sql_modules_and_db() -> None:
    """SQL text appears only in a feature's sql.py and in db/ (and in the kit's pools)."""
    keywords = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE")
    allowed = ("sql.py", "migrations.py", "transactions.py")
    offenders = []
    for name, path in _modules().items():
        if path.name in allowed or not _under(name, "fasterdb_sidecar"):
            continue
        text = path.read_text()
        hits = [k for k in keywords if f'"{k}' in text or f"'{k}" in text or f'f"{k}' in text]
        if hits:
            offenders.append(f"{name}: {hits}")
    assert not offenders, offenders
