"""FASTERDB_* from the environment, as the sidecar and the kit both read them (plain Python).

Secrets may be given as ``FASTERDB_X_FILE``, a path whose content is the value (how Kubernetes
mounts Secrets). Setting both is an error; for an optional secret a ``_FILE`` that does not exist
in a directory that does is "not set" (a Secret volume leaves out the keys its Secret lacks).
Errors are one line that names the variable and never shows the secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from fasterdb.dsn import DsnError, parse_dsn

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ITEM_START = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*=)?[A-Za-z][A-Za-z0-9+.-]*://")
_NAMED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)=(\S+://.*)$", re.DOTALL)


class EnvError(ValueError):
    """A setting that cannot be used; the message is one line and never contains a secret."""


def read_secret(var: str, environ: Mapping[str, str], *, optional: bool) -> str | None:
    """``var`` or the content of the file ``var_FILE`` names (stripped); None when not set."""
    file_var = var + "_FILE"
    if file_var not in environ:
        return environ.get(var)
    if var in environ:
        raise EnvError(f"set {var} or {file_var}, not both")
    path = Path(environ[file_var])
    if optional and not path.exists() and path.parent.is_dir():
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise EnvError(f"{file_var}: cannot read {path}: {exc.strerror or exc}") from None


def _items(text: str) -> list[str]:
    """Split a DSN list at commas and newlines, keeping a multi-host DSN's host list whole."""
    items: list[str] = []
    for piece in re.split(r"[,\n]", text):
        piece = piece.strip()
        if not piece:
            continue
        if items and not _ITEM_START.match(piece):
            items[-1] += "," + piece  # the next host of a multi-host DSN (h1,h2)
        else:
            items.append(piece)
    return items


def parse_replica_dsns(text: str) -> list[tuple[str, str]]:
    """(name, dsn) of each replica in ``FASTERDB_REPLICA_DSNS``: ``name=dsn`` or auto-named ``replica-N``."""
    result: list[tuple[str, str]] = []
    for i, item in enumerate(_items(text)):
        match = _NAMED.match(item)
        name, dsn = (match.group(1), match.group(2)) if match else (f"replica-{i + 1}", item)
        if not _NAME.match(name) or name == "primary":
            raise EnvError(f"replica name {name!r} is not allowed (letters, digits, '.', '_', '-')")
        if any(n == name for n, _ in result):
            raise EnvError(f"replica name {name!r} is used twice")
        try:
            parse_dsn(dsn)
        except DsnError as exc:
            raise EnvError(f"replica {name!r}: {exc}") from None
        result.append((name, dsn))
    return result
