"""Error rendering inside the app: one body shape, unexpected exceptions logged with traceback."""

from __future__ import annotations

import logging

import msgspec
import pytest
from FasterAPI.testclient import TestClient

from devtools.hot_standby import HotStandbyCluster
from service.app import create_app
from service.settings import load_settings


class Item(msgspec.Struct):
    n: int


@pytest.fixture()
def client(pg: HotStandbyCluster, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key, value in pg.sidecar_env().items():
        monkeypatch.setenv(key, value)
    app = create_app(load_settings())

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError(f"exploded while holding {pg.dsn()}")

    @app.post("/test/item")
    async def item(body: Item) -> dict[str, int]:
        return {"n": body.n}

    with TestClient(app) as c:
        yield c


def test_unexpected_exception_is_logged_and_rendered(client, caplog, pg: HotStandbyCluster) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.ERROR, logger="fasterdb.http"):
        response = client.get("/test/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert pg.app_password not in response.text
    records = [r for r in caplog.records if r.name == "fasterdb.http"]
    assert records and records[0].exc_info is not None
    assert "GET /test/boom" in records[0].getMessage()


def test_body_validation_error_uses_our_body(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/test/item", content=b'{"n": "x"}', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    response = client.post("/test/item", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "error" in response.json()


def test_openapi_describes_every_endpoint(client) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/openapi.json").json()
    assert {"/health/live", "/health/db"} <= set(spec["paths"])
    db = spec["paths"]["/health/db"]["get"]
    assert {"200", "503", "400"} <= set(db["responses"])
    assert any(p["name"] == "replicas" for p in db["parameters"])
