"""The HTTP edge's pure parts: query parameters and the route table behind 404/405/Allow."""

from __future__ import annotations

import pytest

from fasterdb.errors import BadRequest
from fasterdb_sidecar.http.conventions import RouteTable
from fasterdb_sidecar.http.params import Param, ParamError, boolean, choice, integer, number, parse_params, size

LIMIT = Param("limit", "query", {}, "", integer(1, 1000), 50)
POOL = Param("pool", "query", {}, "", choice("primary", "east"))
JOB = Param("job_id", "path", {}, "", integer(1), required=True)


def test_defaults_values_and_path_parameters() -> None:
    assert parse_params([LIMIT, POOL], b"", {}) == {"limit": 50, "pool": None}
    assert parse_params([LIMIT, POOL], b"limit=7&pool=east", {}) == {"limit": 7, "pool": "east"}
    assert parse_params([JOB], b"", {"job_id": "12"}) == {"job_id": 12}


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (b"limit=1&limit=2", "given 2 times"),
        (b"limit=", "is empty"),
        (b"limit=%D9%A1", "ASCII digits"),  # Arabic-Indic one
        (b"limit=+5", "ASCII digits"),
        (b"limit=1001", "between 1 and 1000"),
        (b"pool=west", "one of primary, east"),
        (b"lmit=5", "unknown query parameter 'lmit'"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_them(query: bytes, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        parse_params([LIMIT, POOL], query, {})


def test_a_required_path_parameter() -> None:
    with pytest.raises(BadRequest, match="path parameter 'job_id' is required"):
        parse_params([JOB], b"", {})


def test_value_parsers() -> None:
    assert number(0, 10)("2.5") == 2.5 and boolean("ON") is True and boolean("0") is False
    assert size("16MB") == 16 * 1024**2
    for parse, raw in ((number(0, 10), "1e3"), (number(0, 10), "11"), (boolean, "maybe"), (size, "16 apples")):
        with pytest.raises(ParamError):
            parse(raw)


def test_route_table_allow() -> None:
    table = RouteTable(
        [("GET", "/accounts/{account_id}"), ("POST", "/accounts"), ("POST", "/accounts/seed"), ("GET", "/jobs")]
    )
    assert table.allowed("/accounts/12") == {"GET", "HEAD", "OPTIONS"}
    # A literal beats a template: /accounts/seed is not "account 'seed'".
    assert table.allowed("/accounts/seed") == {"POST", "OPTIONS"}
    assert table.allowed("/accounts") == {"POST", "OPTIONS"}
    assert table.allowed("/nope") is None and table.allowed("/accounts/1/extra") is None
