"""Error rendering inside the app: one body shape, unexpected exceptions logged with traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import msgspec
import pytest
from FasterAPI.testclient import TestClient

from devtools.hot_standby import HotStandbyCluster
from fasterdb_sidecar.app import build_app
from fasterdb_sidecar.auth import AdminAuth
from fasterdb_sidecar.http.api import Api, Call, Operation, Reply, json_reply


class Item(msgspec.Struct, forbid_unknown_fields=True):
    n: int


@pytest.fixture()
def client(pg: HotStandbyCluster) -> Iterator[TestClient]:
    """An app built like the sidecar's, with two operations of this test's own."""
    api = Api(AdminAuth(None))

    @api.route(Operation("GET", "/test/boom", "boom", "fails", "test", (Reply(200, "never", Item),)))
    async def boom(call: Call) -> None:
        raise RuntimeError(f"exploded while holding {pg.dsn()}")

    @api.route(Operation("POST", "/test/item", "item", "echoes", "test", (Reply(200, "the item", Item),), body=Item))
    async def item(call: Call) -> object:
        return json_reply(call.body)

    with TestClient(build_app(api)) as c:
        yield c


def test_unexpected_exception_is_logged_and_rendered(
    client: TestClient, caplog: pytest.LogCaptureFixture, pg: HotStandbyCluster
) -> None:
    with caplog.at_level(logging.ERROR, logger="fasterdb.http"):
        response = client.get("/test/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert pg.app_password not in response.text
    records = [r for r in caplog.records if r.name == "fasterdb.http"]
    assert records and records[0].exc_info is not None
    assert "GET /test/boom" in records[0].getMessage()


def test_body_errors_use_our_body(client: TestClient) -> None:
    response = client.post("/test/item", content=b'{"n": "x"}', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert "$.n" in response.json()["error"]["message"]
    for raw in (b"{not json", b"", b'{"n": 1, "m": 2}'):
        response = client.post("/test/item", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422 and set(response.json()) == {"error"}, raw
    assert client.post("/test/item", content=b'{"n": 7}').json() == {"n": 7}
