"""The OpenAPI document, checked by openapi-spec-validator, and the live sidecar fuzzed with it.

schemathesis (its own command line, as a user runs it) generates requests from /openapi.json:
the examples, then the coverage phase (boundary values, wrong types, undeclared methods), then
property-based fuzzing, with every check on but "positive data accepted" (two different accounts
and existing accounts are rules JSON Schema cannot say). Fixed seed, bounded examples; the SSE
streams are left out (they never end) and tested in test_http.py and test_status_page.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from tests.conformance.conftest import TOKEN
from tests.harness import SidecarProcess

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def test_the_document_is_valid_openapi_and_complete(admin_sidecar: SidecarProcess) -> None:
    doc = httpx.get(admin_sidecar.url + "/openapi.json", timeout=10).json()
    validate(doc)  # raises on any violation of OpenAPI 3.1
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "FASTERDB_ADMIN_TOKEN of the sidecar (admin endpoints only)",
    }
    expected = {
        "/health/live", "/health/db", "/health/replicas", "/pools", "/pools/stream", "/metrics",
        "/openapi.json", "/docs", "/admin/migrate", "/accounts", "/accounts/{account_id}", "/transfers",
        "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/", "/status/stream",
    }  # fmt: skip
    assert expected <= set(doc["paths"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert any(s.startswith("2") for s in statuses), (method, path)
            if op.get("parameters"):
                assert "400" in statuses, (method, path)
            if "requestBody" in op:
                assert {"413", "422"} <= statuses, (method, path)
            if op.get("security"):
                assert op["security"] == [{"bearerAuth": []}]
                assert {"401", "403"} <= statuses and "WWW-Authenticate" in op["responses"]["401"]["headers"]
    admin = {(m, p) for p, item in doc["paths"].items() for m, op in item.items() if op.get("security")}
    assert ("post", "/transfers") in admin and ("get", "/jobs") in admin and ("get", "/health/db") not in admin


@pytest.mark.parametrize("authorized", [True, False], ids=["with-token", "without-token"])
def test_schemathesis_finds_nothing(admin_sidecar: SidecarProcess, authorized: bool, tmp_path: Path) -> None:
    command = [
        SCHEMATHESIS,
        "run",
        admin_sidecar.url + "/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "40" if authorized else "20",
        "--seed",
        "20261125",
        "--exclude-path",
        "/pools/stream",
        "--exclude-path",
        "/status/stream",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    if authorized:
        command += ["--header", f"Authorization: Bearer {TOKEN}"]
    # In a directory of its own: schemathesis keeps a crash cache in its working directory, which
    # must neither land in the source tree nor replay one run's findings into the next.
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    tally = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert tally and tally.group(1) == tally.group(2) and int(tally.group(1)) > 300, result.stdout[-3000:]
    logs = admin_sidecar.logs()
    assert "unhandled error" not in logs and "Traceback" not in logs
