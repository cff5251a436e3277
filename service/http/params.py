"""Query and path parameters, parsed in one place.

FasterAPI 0.2.14 hands over query values as raw strings (a repeated one as a list) and does not
validate them, so every parameter is declared once — name, OpenAPI schema, parser — and parsed
here. A repeated single-valued parameter, an empty value, anything but ASCII digits where a
number belongs, a value out of range or an unknown parameter is a 400 naming the parameter:
never a 500, never a silent default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from fasterdb.errors import BadRequest
from fasterdb.sizes import SizeError, parse_size

_INT = re.compile(r"[0-9]{1,19}", re.ASCII)
_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?", re.ASCII)


class ParamError(ValueError):
    """A parameter value that cannot be read; the message completes 'parameter X ...'."""


@dataclass(frozen=True)
class Param:
    """One declared parameter: where it is, how it is documented, how it is read."""

    name: str
    where: Literal["query", "path"]
    schema: dict[str, Any]
    description: str
    parse: Callable[[str], Any]
    default: Any = None
    required: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The OpenAPI parameter object."""
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": self.schema,
            **self.extra,
        }


def integer(minimum: int = 1, maximum: int = 2**63 - 1) -> Callable[[str], int]:
    """ASCII digits only (no sign, no spaces, no '²' or '١'), within [minimum, maximum]."""

    def parse(raw: str) -> int:
        if not _INT.fullmatch(raw):
            raise ParamError(f"must be a whole number between {minimum} and {maximum} (ASCII digits)")
        value = int(raw)
        if not minimum <= value <= maximum:
            raise ParamError(f"must be between {minimum} and {maximum}")
        return value

    return parse


def number(minimum: float, maximum: float) -> Callable[[str], float]:
    """A plain decimal number (ASCII digits, optionally a point), within [minimum, maximum]."""

    def parse(raw: str) -> float:
        if not _DECIMAL.fullmatch(raw):
            raise ParamError(f"must be a number between {minimum:g} and {maximum:g} such as 1.5 (ASCII digits)")
        value = float(raw)
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise ParamError(f"must be between {minimum:g} and {maximum:g}")
        return value

    return parse


def boolean(raw: str) -> bool:
    """true/false (also 1/0, yes/no, on/off), any case."""
    value = raw.lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ParamError("must be true or false")


def size(raw: str) -> int:
    """A byte size such as 16MB or 1048576 (never read as 'no limit')."""
    try:
        return parse_size(raw)
    except SizeError as exc:
        raise ParamError(str(exc)) from None


def choice(*values: str) -> Callable[[str], str]:
    """One of ``values``, exactly."""

    def parse(raw: str) -> str:
        if raw not in values:
            raise ParamError(f"must be one of {', '.join(values)}")
        return raw

    return parse


def query_values(query_string: bytes) -> dict[str, list[str]]:
    """Every query parameter with all its values (percent-decoded as UTF-8)."""
    found: dict[str, list[str]] = {}
    text = query_string.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, errors="replace"):
        found.setdefault(name, []).append(value)
    return found


def parse_params(params: Iterable[Param], query_string: bytes, path_params: dict[str, str]) -> dict[str, Any]:
    """Read every declared parameter of a request; BadRequest (400) names the first bad one."""
    declared = list(params)
    if not query_string and not path_params and not any(p.required for p in declared):
        return {p.name: p.default for p in declared}  # a probe's request: nothing to parse
    given = query_values(query_string)
    known = {p.name for p in declared if p.where == "query"}
    unknown = sorted(set(given) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise BadRequest(f"unknown query parameter {unknown[0]!r} (this endpoint takes: {listed})")
    values: dict[str, Any] = {}
    for param in declared:
        if param.where == "path":
            raw_values = [path_params[param.name]] if param.name in path_params else []
        else:
            raw_values = given.get(param.name, [])
        kind = f"{param.where} parameter {param.name!r}"
        if not raw_values:
            if param.required:
                raise BadRequest(f"{kind} is required")
            values[param.name] = param.default
            continue
        if len(raw_values) > 1:
            raise BadRequest(f"{kind} is given {len(raw_values)} times; give it once")
        raw = raw_values[0]
        if raw == "":
            raise BadRequest(f"{kind} is empty")
        try:
            values[param.name] = param.parse(raw)
        except ParamError as exc:
            raise BadRequest(f"{kind} {exc}") from None
    return values
