"""Byte sizes: the parser, and its grammar shared by the OpenAPI document, the chart and the README."""

from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fasterdb.sizes import MAX_SIZE, SIZE_PATTERN, SizeError, format_size, parse_size
from fasterdb_sidecar.routes.replicas import SIZE_SCHEMA
from tests.harness import ROOT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16MB", 16 * 1024**2),
        ("16mb", 16 * 1024**2),
        ("16MiB", 16 * 1024**2),
        ("16kB", 16 * 1024),
        ("16KB", 16 * 1024),
        ("16kib", 16 * 1024),
        ("1048576", 1048576),
        ("0", 0),
        ("1GB", 1024**3),
        ("2 TB", 2 * 1024**4),
        ("1.5MB", 1572864),
        ("8B", 8),
        (4096, 4096),
    ],
)
def test_accepts_numbers_and_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["16XB", "-1", "", "  ", "abc", "16 M B", "1e3", "0.5B", "16MBB", "MB", "nan"])
def test_rejects_garbage_instead_of_reading_no_limit(text: str) -> None:
    with pytest.raises(SizeError):
        parse_size(text)


def test_rejects_negative_int_and_bool_and_huge() -> None:
    with pytest.raises(SizeError):
        parse_size(-5)
    with pytest.raises(SizeError):
        parse_size(True)
    with pytest.raises(SizeError):
        parse_size(str(MAX_SIZE + 1))


def test_format_size() -> None:
    assert format_size(None) == "-"
    assert format_size(512) == "512 B"
    assert format_size(16 * 1024**2) == "16.0 MB"


# What a JSON Schema validator (not Python's re, whose "$" lets a final newline through) says.
_SCHEMA = jsonschema_rs.validator_for({"type": "string", "pattern": SIZE_PATTERN})
# Refusals the pattern cannot express: they need arithmetic.
_ARITHMETIC = ("not a whole number of bytes", "too large")


def _pattern_accepts(text: str) -> bool:
    return bool(_SCHEMA.is_valid(text))


def _parser_verdict(text: str) -> str:
    """'ok', 'arithmetic' (refused for a reason the pattern cannot say) or 'refused'."""
    try:
        parse_size(text)
    except SizeError as exc:
        return "arithmetic" if any(reason in str(exc) for reason in _ARITHMETIC) else "refused"
    return "ok"


def _patterns(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


def test_openapi_and_chart_carry_the_parsers_pattern() -> None:
    assert SIZE_SCHEMA["pattern"] == SIZE_PATTERN
    schema = json.loads((ROOT / "helm/fasterdb-sidecar/values.schema.json").read_text())
    sizes = [p for p in _patterns(schema) if "[bB]" in p]  # the chart's size values
    assert len(sizes) >= 2 and set(sizes) == {SIZE_PATTERN}, sizes


@given(st.from_regex(SIZE_PATTERN, fullmatch=True))
def test_everything_the_pattern_matches_is_read(text: str) -> None:
    assert _parser_verdict(text) in ("ok", "arithmetic"), text


@given(st.text(alphabet="0123456789.kKmMgGtTiIbBxXe +-\t\n\u00a0\u0661", max_size=12))
def test_the_parser_accepts_nothing_the_pattern_refuses(text: str) -> None:
    verdict = _parser_verdict(text)
    assert (verdict != "refused") == _pattern_accepts(text), (text, verdict)


def _readme_examples(prefix: str) -> list[str]:
    line = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(prefix))
    return re.findall(r"`([^`]*)`", line)


def test_the_readme_states_the_same_grammar() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`{SIZE_PATTERN}`" in readme
    accepted, refused = _readme_examples("- Sizes accepted:"), _readme_examples("- Sizes refused")
    assert len(accepted) >= 5 and len(refused) >= 7
    for text in accepted:
        assert _parser_verdict(text) == "ok" and _pattern_accepts(text), text
    for text in [*refused, "16\tMB", "", "16MB\n"]:
        assert _parser_verdict(text) != "ok", text
        assert _pattern_accepts(text) == (_parser_verdict(text) == "arithmetic"), text
    assert parse_size("16 MB") == parse_size("16MiB") == 16777216 and parse_size("1.5MB") == 1572864
