"""User input at the edges of its ranges: every refusal a 4xx with the contract's body, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from devtools.cluster import free_port
from tests.harness import SidecarProcess, wait_for
from tests.integration.test_transfers import AUTH, TOKEN, new_schema, post


@pytest.fixture(scope="module")
def admin(sidecar_env: dict[str, str]) -> Iterator[SidecarProcess]:
    """One sidecar with a migrated schema of its own for the module (every case is independent)."""
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_SCHEMA=new_schema())
    with SidecarProcess(env) as proc:
        assert httpx.post(proc.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
        yield proc


INT64_MAX = 2**63 - 1
ITEM = {"from_account": 1, "to_account": 2, "amount": "1"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/accounts/seed", {"start": INT64_MAX, "count": 1, "balance": "1"}),
        ("/accounts/seed", {"start": INT64_MAX, "count": 2, "balance": "1"}),
        ("/accounts/seed", {"start": INT64_MAX - 5, "count": 10, "balance": "1"}),
        ("/accounts/seed", {"start": 0, "count": 1, "balance": "1"}),
        ("/accounts/seed", {"start": 1, "count": 0, "balance": "1"}),
        ("/accounts/seed", {"start": INT64_MAX + 1, "count": 1, "balance": "1"}),
        ("/accounts/seed", {"start": -1, "count": 1, "balance": "1"}),
        ("/accounts/seed", {"start": 1, "count": 2**64, "balance": "1"}),
        ("/accounts", {"id": INT64_MAX, "balance": "1"}),
        ("/accounts", {"id": INT64_MAX + 1, "balance": "1"}),
        ("/accounts", {"id": 2**200, "balance": "1"}),
        ("/accounts", {"id": 1, "balance": "99999999999999999999999"}),
        ("/transfers", {"from_account": INT64_MAX, "to_account": 1, "amount": "1", "idempotency_key": "k1"}),
        ("/transfers", {"from_account": 2**64, "to_account": 1, "amount": "1", "idempotency_key": "k2"}),
        ("/transfers", {"from_account": 1, "to_account": 2, "amount": "1e400", "idempotency_key": "k3"}),
        ("/transfers", {"from_account": 1, "to_account": 2, "amount": 1e400, "idempotency_key": "k3"}),
        ("/transfers", {"from_account": 1, "to_account": 2, "amount": "999999999999999999999", "idempotency_key": "k"}),
        ("/jobs", {"kind": "transfer-batch", "items": [], "batch_size": 1}),
        (
            "/jobs",
            {
                "kind": "transfer-batch",
                "items": [{"from_account": 1, "to_account": 2, "amount": "1"}],
                "batch_size": 2**63,
            },
        ),
        ("/jobs", {"kind": "transfer-batch", "items": [{"from_account": 2**63, "to_account": 2, "amount": "1"}]}),
        (
            "/jobs",
            {
                "kind": "transfer-batch",
                "items": [{"from_account": 1, "to_account": 2, "amount": "1"}],
                "batch_size": -1,
            },
        ),
    ],
)
def test_no_input_is_a_500(admin: SidecarProcess, path: str, body: object) -> None:
    response = post(admin, path, body)
    assert response.status_code < 500, (path, body, response.status_code, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message"} and error["message"]


@pytest.mark.parametrize(
    "path",
    [
        f"/accounts/{INT64_MAX}",
        f"/accounts/{INT64_MAX + 1}",
        "/accounts/0",
        f"/jobs/{INT64_MAX}",
        f"/jobs/{INT64_MAX + 1}",
        "/jobs/-1",
        f"/db/budget?pods={2**70}",
        f"/db/budget?pods=1&surge={2**70}",
        f"/health/replicas?max_lag_bytes={2**70}",
        "/health/replicas?max_lag_seconds=1e400",
        "/pools/stream?interval=1e400",
    ],
)
def test_no_query_is_a_500(admin: SidecarProcess, path: str) -> None:
    if path.startswith("/pools/stream"):
        with httpx.stream("GET", admin.url + path, headers=AUTH, timeout=10) as response:
            assert response.status_code < 500, (path, response.status_code)
        return
    response = httpx.get(admin.url + path, headers=AUTH, timeout=10)
    assert response.status_code < 500, (path, response.status_code, response.text)


def test_a_5xx_is_logged_with_its_cause_without_secrets() -> None:
    password = "s3cret-p@ss:w/rd"
    dsn = f"postgresql://fasterdb_app:{quote(password, safe='')}@127.0.0.1:{free_port()}/fasterdb"
    env = {"FASTERDB_PRIMARY_DSN": dsn, "FASTERDB_ADMIN_TOKEN": TOKEN, "FASTERDB_CONNECT_TIMEOUT": "0.5"}
    with SidecarProcess(env) as sidecar:
        body = {"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": "logged-503"}
        response = httpx.post(sidecar.url + "/transfers", json=body, headers=AUTH, timeout=30)
        assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
        line = wait_for(
            lambda: next((x for x in sidecar.logs().splitlines() if "answered 503" in x), None), 10, what="log"
        )
        assert "POST /transfers" in line and "cause:" in line and "no underlying exception" not in line
        logs = sidecar.logs()
        assert password not in logs and quote(password, safe="") not in logs and TOKEN not in logs
