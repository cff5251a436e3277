"""A sidecar with the admin endpoints on, a migrated schema of its own and two accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import SidecarProcess

TOKEN = "conformance-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def admin_sidecar(sidecar_env: dict[str, str]) -> Iterator[SidecarProcess]:
    """Shared by the tests of one module; each module gets a schema of its own."""
    env = dict(sidecar_env, FASTERDB_ADMIN_TOKEN=TOKEN, FASTERDB_SCHEMA="conf_" + uuid.uuid4().hex[:8])
    with SidecarProcess(env) as proc:
        assert httpx.post(proc.url + "/admin/migrate", headers=AUTH, timeout=30).status_code == 200
        for account in (1, 2):
            response = httpx.post(proc.url + "/accounts", json={"id": account, "balance": "1000"}, headers=AUTH)
            assert response.status_code == 201, response.text
        yield proc
